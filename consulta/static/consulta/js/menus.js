// The "three dots" and Export menus (<details class="menu">) behave as menus: one open at a
// time; Escape, a click elsewhere or Tab out of the menu closes it; Escape puts the focus back
// on its button. The list's rows are replaced as the user searches, so the listeners sit on the
// document. Without JavaScript each menu still opens and closes with its own button.
const openMenus = () => document.querySelectorAll("details.menu[open]");

// `toggle` does not bubble: listen in the capture phase.
document.addEventListener(
  "toggle",
  (event) => {
    const menu = event.target;
    if (!(menu instanceof HTMLDetailsElement) || !menu.matches(".menu") || !menu.open) return;
    for (const other of openMenus()) if (other !== menu) other.open = false;
  },
  true,
);

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  for (const menu of openMenus()) {
    const hadFocus = menu.contains(document.activeElement);
    menu.open = false;
    if (hadFocus) menu.querySelector("summary").focus();
  }
});

document.addEventListener("click", (event) => {
  for (const menu of openMenus()) if (!menu.contains(event.target)) menu.open = false;
});

document.addEventListener("focusout", (event) => {
  const menu = event.target.closest?.("details.menu[open]");
  if (menu && event.relatedTarget && !menu.contains(event.relatedTarget)) menu.open = false;
});
