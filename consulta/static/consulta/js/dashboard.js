// Keeps the "waiting now" panel and the visit list live: the server rings a doorbell on
// every change and the page fetches the list again through the access-checked view.
import { openSocket } from "./socket.js";

const panel = document.getElementById("visits-live");

async function refresh() {
  const response = await fetch(panel.dataset.source, {
    headers: { "X-Requested-With": "fetch" },
    credentials: "same-origin",
  });
  if (response.redirected || !response.ok) {
    location.reload();
    return;
  }
  panel.innerHTML = await response.text();
}

if (panel) {
  let first = true;
  openSocket(panel.dataset.wsPath, {
    onMessage(message) {
      if (message.type === "visits_changed") refresh();
    },
    onOpen() {
      // After a reconnect we may have missed a doorbell.
      if (!first) refresh();
      first = false;
    },
    onRefused() {
      location.reload();
    },
  });
}
