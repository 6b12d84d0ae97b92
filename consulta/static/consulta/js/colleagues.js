// The Colleagues page: presence changes live, and each Call button is enabled only for a
// colleague who is online and free, with the reason written next to it otherwise.
import { onStaffMessage, presence } from "./staff-socket.js";

const t = JSON.parse(document.getElementById("colleagues-strings").textContent);
// Moving from one page to the next closes a socket and opens another within a second:
// "offline" waits this long, so that a colleague browsing does not blink.
const OFFLINE_AFTER_MS = 2500;
const pendingOffline = new Map();

function render(id, state) {
  const row = document.querySelector(`.colleague[data-staff-id="${id}"]`);
  if (!row) return;
  row.dataset.presence = state;
  row.querySelector(".presence-state").textContent = t[state] || state;
  const isMe = row.dataset.me === "true";
  const reason = isMe
    ? t.reasonYou
    : { offline: t.reasonOffline, in_call: t.reasonInCall }[state] || "";
  row.querySelector(".call-button").disabled = Boolean(reason);
  const note = row.querySelector(".call-reason");
  note.textContent = reason;
  note.hidden = !reason;
}

function apply(id, state) {
  clearTimeout(pendingOffline.get(id));
  pendingOffline.delete(id);
  if (state === "offline") {
    pendingOffline.set(
      id,
      setTimeout(() => render(id, "offline"), OFFLINE_AFTER_MS),
    );
    return;
  }
  render(id, state);
}

onStaffMessage((message) => {
  if (message.type === "hello") {
    for (const [id, state] of presence) apply(id, state);
  } else if (message.type === "presence") {
    apply(message.staff, message.state);
  }
});
for (const [id, state] of presence) render(id, state); // the greeting may have come first
