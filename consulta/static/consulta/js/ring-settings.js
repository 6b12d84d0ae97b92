// The ringtone settings page: the volume's value next to its slider, and "Play" to hear the
// chosen tone at the chosen volume before saving.
import { startRinging, toneLength } from "./ring.js";

const t = JSON.parse(document.getElementById("ring-strings").textContent);
const form = document.getElementById("ring-form");
const volume = form.elements.volume;
const output = document.getElementById("volume-value");
const play = document.getElementById("ring-preview");
let stop = null;
let timer = null;

function chosen() {
  return { tone: form.elements.tone.value, volume: Number(volume.value) };
}

function silence() {
  if (stop) stop();
  stop = null;
  clearTimeout(timer);
  play.textContent = t.play;
}

function preview() {
  silence();
  const { tone } = chosen();
  stop = startRinging(chosen());
  play.textContent = t.stop;
  timer = setTimeout(silence, toneLength(tone) * 1000);
}

output.textContent = volume.value;
volume.addEventListener("input", () => {
  output.textContent = volume.value;
});
// A change while it plays is heard at once.
form.addEventListener("change", () => {
  if (stop) preview();
});
play.hidden = false;
play.addEventListener("click", () => (stop ? silence() : preview()));
