// A "Copy link" button next to a read-only field: the clipboard where the browser allows it
// (HTTPS, or this computer), else the link is selected for Ctrl+C. Texts come from the
// box's data-copied and data-copy-by-hand attributes.
export function bindCopy(box, input, button, status) {
  button?.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(input.value);
      status.textContent = box.dataset.copied;
    } catch {
      input.focus();
      input.select();
      status.textContent = box.dataset.copyByHand;
    }
  });
}

// Every box marked data-copy-box on the page: one field, one button, one status line.
for (const box of document.querySelectorAll("[data-copy-box]")) {
  bindCopy(
    box,
    box.querySelector("input"),
    box.querySelector("button[data-copy]"),
    box.querySelector("[data-copy-status]"),
  );
}
