// Keeps a panel live (the dashboard's visits, the calendar's grid): the server rings the
// clinic's doorbell on every change and the page fetches the panel again through its
// access-checked view. In the calendar, a booking blinks while its patient waits.
import { openSocket } from "./socket.js";

for (const panel of document.querySelectorAll("[data-live-source]")) {
  const refresh = async () => {
    const response = await fetch(panel.dataset.liveSource, {
      headers: { "X-Requested-With": "fetch" },
      credentials: "same-origin",
    });
    if (response.redirected || !response.ok) {
      location.reload();
      return;
    }
    panel.innerHTML = await response.text();
  };
  let first = true;
  openSocket(panel.dataset.wsPath, {
    onMessage(message) {
      if (message.type === "visits_changed") refresh();
    },
    onOpen() {
      if (!first) refresh(); // after a reconnect we may have missed a doorbell
      first = false;
    },
    onRefused() {
      location.reload();
    },
  });
}
