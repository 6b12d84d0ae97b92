// The incoming-call dialog, on every staff page: "NAME is calling you", Accept (focused) or
// Decline (Escape declines too), with the person's ringtone looping until it is answered,
// declined, cancelled by the caller, or missed.
import { startRinging } from "./ring.js";

const $ = (id) => document.getElementById(id);

export function incomingCalls({ me, ring, strings, csrfToken }) {
  const dialog = $("incoming-call");
  const accept = $("incoming-accept");
  const decline = $("incoming-decline");
  const error = $("incoming-call-error");
  let current = null; // { call, stopRinging, timer }

  function post(url) {
    return fetch(url, {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
      credentials: "same-origin",
    });
  }

  function close() {
    if (!current) return;
    current.stopRinging();
    clearTimeout(current.timer);
    current = null;
    if (dialog.open) dialog.close();
  }

  function show(call) {
    close();
    $("incoming-call-title").textContent = strings.isCalling.replace("%(name)s", call.caller.name);
    error.hidden = true;
    accept.disabled = false;
    decline.disabled = false;
    dialog.dataset.callId = call.id;
    try {
      dialog.showModal();
    } catch {
      dialog.show(); // another modal is open: show it anyway
    }
    accept.focus();
    current = {
      call,
      stopRinging: startRinging(ring),
      // If the "missed" message is lost, the dialog still goes away on time.
      timer: setTimeout(close, (call.ring_seconds_left + 3) * 1000),
    };
  }

  function fail(text) {
    if (current) current.stopRinging();
    error.textContent = text;
    error.hidden = false;
    accept.disabled = true;
    setTimeout(close, 4000);
  }

  accept.addEventListener("click", async () => {
    if (!current) return;
    const call = current.call;
    accept.disabled = true;
    decline.disabled = true;
    current.stopRinging();
    try {
      const response = await post(call.accept_url);
      const body = await response.json().catch(() => ({}));
      if (response.ok) {
        location.assign(body.url || call.url);
        return;
      }
      fail(body.message || strings.failed);
    } catch {
      fail(strings.failed);
    }
  });

  function refuse() {
    if (!current) return;
    const call = current.call;
    close();
    post(call.decline_url).catch((err) => console.warn("could not decline", err));
  }

  decline.addEventListener("click", refuse);
  // Escape on a modal dialog fires "cancel": it declines the call.
  dialog.addEventListener("cancel", (event) => {
    event.preventDefault();
    refuse();
  });

  return {
    // A call changed (or started ringing). Calls I make are the call page's business.
    update(call) {
      if (call.callee.id !== me) return;
      if (call.status === "ringing" && call.ring_seconds_left > 0) {
        if (!current || current.call.id !== call.id) show(call);
      } else if (current && current.call.id === call.id) {
        close();
      }
    },
    // The calls ringing for me now (after a (re)connection): show one, forget the others.
    sync(ringing) {
      const mine = ringing.filter((call) => call.callee.id === me);
      if (current && !mine.some((call) => call.id === current.call.id)) close();
      if (mine.length > 0) this.update(mine[0]);
    },
  };
}
