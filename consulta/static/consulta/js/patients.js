import "./menus.js";

// Search as you type: the list is fetched again (same view, results only) after a short pause,
// and the address bar follows so that the back button and reloads keep the search.
const form = document.getElementById("patient-filters");
const results = document.getElementById(form.dataset.results);
let timer = null;
let latest = 0;

async function refresh() {
  const params = new URLSearchParams(new FormData(form));
  const url = `${location.pathname}?${params}`;
  const ticket = ++latest;
  const response = await fetch(url, { headers: { "X-Requested-With": "fetch" } });
  if (ticket !== latest) return; // a newer search has started
  if (!response.ok || response.redirected) {
    location.assign(url);
    return;
  }
  results.innerHTML = await response.text();
  history.replaceState(null, "", url);
}

form.addEventListener("input", () => {
  clearTimeout(timer);
  timer = setTimeout(refresh, 250);
});
form.addEventListener("change", (event) => {
  if (event.target.tagName === "SELECT") refresh();
});
form.addEventListener("submit", (event) => {
  event.preventDefault();
  refresh();
});
