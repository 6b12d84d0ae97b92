// The dashboard's "waiting now" alert: the page title counts the waiting patients, the panel
// stands out while anyone waits, and, if the doctor asked for it (kept in this browser), a
// short tone plays when one more patient starts waiting.
const box = document.getElementById("visits-live");
const toggle = document.getElementById("waiting-sound");
const KEY = "consulta.waitingSound";
const baseTitle = document.title;
let known = null;

toggle.checked = localStorage.getItem(KEY) === "on";
toggle.addEventListener("change", () => localStorage.setItem(KEY, toggle.checked ? "on" : "off"));

function tone() {
  const context = new AudioContext();
  const oscillator = context.createOscillator();
  const gain = context.createGain();
  oscillator.frequency.value = 880;
  gain.gain.setValueAtTime(0.2, context.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, context.currentTime + 0.6);
  oscillator.connect(gain).connect(context.destination);
  oscillator.start();
  oscillator.stop(context.currentTime + 0.6);
}

function update() {
  const panel = document.getElementById("waiting-now");
  if (!panel) return;
  const waiting = Number(panel.dataset.waiting || 0);
  document.title = waiting > 0 ? `(${waiting}) ${baseTitle}` : baseTitle;
  if (known !== null && waiting > known && toggle.checked) tone();
  known = waiting;
}

if (box) {
  update();
  new MutationObserver(update).observe(box, { childList: true });
}
