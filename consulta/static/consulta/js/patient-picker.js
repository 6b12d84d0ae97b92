// The start form's patient search, as the doctor types: the choices are fetched again (an
// access-checked view) after a short pause. Without JavaScript the search form reloads the page.
const form = document.getElementById("start-patient-search");
const choices = document.getElementById(form.dataset.choices);
const input = form.querySelector("input[type=search]");
let timer = null;
let latest = 0;

async function refresh() {
  const url = `${form.dataset.choicesSource}?${new URLSearchParams({ patient_q: input.value })}`;
  const ticket = ++latest;
  const response = await fetch(url, {
    headers: { "X-Requested-With": "fetch" },
    credentials: "same-origin",
  });
  if (ticket !== latest) return; // a newer search has started
  if (!response.ok || response.redirected) {
    form.submit(); // signed out, say: the plain form shows why
    return;
  }
  choices.innerHTML = await response.text();
}

input.addEventListener("input", () => {
  clearTimeout(timer);
  timer = setTimeout(refresh, 250);
});
form.addEventListener("submit", (event) => {
  event.preventDefault();
  clearTimeout(timer);
  refresh();
});
