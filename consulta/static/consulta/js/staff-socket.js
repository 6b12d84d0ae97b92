// Every page of a signed-in staff member keeps this socket open (docs/internal-calls.md):
// it makes the person "online" for their colleagues (a ping every heartbeat), brings the
// colleagues' presence, and rings when someone calls. Other modules of the page listen
// with onStaffMessage() and read the latest presence from `presence`.
import { incomingCalls } from "./incoming-call.js";
import { openSocket } from "./socket.js";

const config = JSON.parse(document.getElementById("staff-socket-config").textContent);

// staff id -> "online" | "offline" | "in_call", as the server last said.
export const presence = new Map();
const listeners = new Set();

export function onStaffMessage(listener) {
  listeners.add(listener);
}

const calls = incomingCalls({
  me: config.me,
  ring: config.ring,
  strings: config.strings,
  csrfToken: config.csrfToken,
});

function handle(message) {
  if (message.type === "hello") {
    presence.clear();
    for (const [id, state] of Object.entries(message.presence)) presence.set(Number(id), state);
    calls.sync(message.calls);
  } else if (message.type === "presence") {
    presence.set(message.staff, message.state);
  } else if (message.type === "call") {
    calls.update(message.call);
  }
  for (const listener of listeners) {
    try {
      listener(message);
    } catch (error) {
      console.error(error);
    }
  }
}

const socket = openSocket(config.wsPath, {
  onMessage: handle,
  onRefused() {
    // Signed out meanwhile: the next page load shows the sign-in page.
  },
});

setInterval(() => socket.send({ type: "ping" }), config.heartbeatSeconds * 1000);
