// A WebSocket that reconnects with backoff. The server is the source of truth: after a
// reconnect it sends the current state again, so nothing has to be replayed here.
export function openSocket(path, { onMessage, onOpen, onRefused }) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  let socket = null;
  let attempts = 0;
  let stopped = false;

  function connect() {
    socket = new WebSocket(`${proto}//${location.host}${path}`);
    socket.addEventListener("open", () => {
      attempts = 0;
      if (onOpen) onOpen();
    });
    socket.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      if (stopped) return;
      // 4401/4403: not signed in or not allowed; 4409: no room for us. Trying again would
      // change nothing.
      if (event.code >= 4400 && event.code < 4500) {
        if (onRefused) onRefused(event.code);
        return;
      }
      const delay = Math.min(500 * 2 ** attempts, 8000);
      attempts += 1;
      setTimeout(connect, delay);
    });
  }

  connect();
  return {
    send(message) {
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify(message));
        return true;
      }
      return false;
    },
    get open() {
      return socket !== null && socket.readyState === WebSocket.OPEN;
    },
    close() {
      stopped = true;
      if (socket) socket.close(1000); // a goodbye: the others see "left", not "dropped"
    },
  };
}
