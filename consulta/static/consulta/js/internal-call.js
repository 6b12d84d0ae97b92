// The call page of an internal call between two colleagues (docs/internal-calls.md). The
// caller's page rings until the other answers (from the dialog on any of their pages);
// then the caller makes the offer and the callee answers, and a dropped connection
// reconnects and negotiates afresh, as in a video visit (docs/signalling.md).
import {
  bindDevicePickers,
  bindMediaToggles,
  bindPictureInPicture,
  bindScreenShare,
  elapsedClock,
  keepSessionAlive,
  mediaState,
  oneAtATime,
  qualityMeter,
  setStatus,
  showError,
  showRemoteMedia,
  startMedia,
} from "./call-screen.js";
import { outgoingStream } from "./devices.js";
import { PeerLink } from "./peer.js";
import { openSocket } from "./socket.js";

const $ = (id) => document.getElementById(id);
const config = JSON.parse($("call-config").textContent);
const t = JSON.parse($("call-strings").textContent);
const isCaller = config.role === "caller";
const named = (text) => text.replace("%(name)s", config.otherName);

const state = {
  status: config.status,
  local: null,
  present: false, // whether the other person's call page is connected
  ended: false,
  graceTimer: null, // while the other side's connection has dropped
};
let socket = null;
const inCall = () => state.status === "accepted";
const getLocal = () => state.local;
const clock = elapsedClock(t, config.serverTime); // from the moment the call was answered

const link = new PeerLink({
  peerId: isCaller ? "callee" : "caller",
  offerer: isCaller,
  iceServers: config.iceServers,
  iceTransportPolicy: config.iceTransportPolicy,
  getLocal: () => outgoingStream(state.local),
  send: (message) => socket?.send(message),
  handlers: {
    onTrack(stream) {
      const video = $("remote-video");
      if (video.srcObject !== stream) video.srcObject = stream;
    },
    onConnected() {
      setStatus(t.inCall);
    },
    onRestart() {
      setStatus(t.reconnecting);
    },
    onStall() {
      if (inCall()) setStatus(t.reconnecting);
    },
    onResume() {
      if (inCall()) setStatus(t.inCall);
    },
    canRestart: () => state.present && Boolean(socket?.open) && inCall(),
  },
});

// Tests and benchmarks read the connection's statistics through this handle.
window.consulta = {
  get pc() {
    return link.pc;
  },
  get status() {
    return state.status;
  },
};

function sendersOf(kind) {
  const sender = link.sender(kind);
  return sender ? [sender] : [];
}

// --- the call's state ------------------------------------------------------------------

const OVER = {
  declined: () => named(t.declined),
  missed: () => t.missed,
  cancelled: () => t.cancelled,
  ended: () => t.ended,
};

async function applyState(message) {
  const previous = state.status;
  state.status = message.status;
  if (OVER[message.status]) {
    finish(OVER[message.status]());
    return;
  }
  $("hangup-button").textContent = message.status === "ringing" && isCaller ? t.cancel : t.hangUp;
  screenShare.update();
  if (message.status === "ringing") {
    setStatus(isCaller ? named(t.calling) : named(t.ringingYou));
    return;
  }
  clock.show(inCall() ? message.answered_at : null);
  if (!state.present) {
    setStatus(named(t.waitingForPeer));
  } else if (previous !== "accepted" && isCaller) {
    setStatus(t.connecting);
    await link.offer();
  }
}

// The other person's page is gone (or gone for longer than the grace period).
function gone() {
  clearTimeout(state.graceTimer);
  state.present = false;
  link.hangUp();
  $("remote-video").srcObject = null;
  $("remote-muted").hidden = true;
  if (state.status === "accepted") setStatus(named(t.peerLeft));
}

async function onPresence(message) {
  clearTimeout(state.graceTimer);
  if (message.state === "dropped" && state.status === "accepted") {
    // Lost, not gone: keep the connection for the grace period; it may resume by itself.
    setStatus(named(t.peerReconnecting));
    state.graceTimer = setTimeout(gone, config.reconnectGraceSeconds * 1000);
    return;
  }
  if (message.state === "left" || message.state === "dropped") {
    gone();
    return;
  }
  // joined or here: the other page is (back) on the call; the caller negotiates afresh.
  state.present = true;
  if (state.status === "accepted" && isCaller) {
    setStatus(t.connecting);
    await link.offer();
  }
}

function finish(text) {
  state.ended = true;
  clearTimeout(state.graceTimer);
  clock.stop();
  screenShare.stop();
  link.close();
  $("remote-video").srcObject = null;
  if (state.local) for (const track of state.local.getTracks()) track.stop();
  for (const button of document.querySelectorAll(".controls button")) button.disabled = true;
  $("quality").hidden = true;
  $("after-call").hidden = false;
  setStatus(text);
  if (socket) socket.close();
}

// --- messages ----------------------------------------------------------------------------

async function handle(message) {
  switch (message.type) {
    case "hello":
    case "state":
      await applyState(message);
      break;
    case "presence":
      await onPresence(message);
      break;
    case "offer":
      state.present = true;
      await link.onOffer(message.sdp);
      sendMediaState();
      break;
    case "answer":
      if (await link.onAnswer(message.sdp)) sendMediaState();
      break;
    case "ice":
      await link.onIce(message.candidate);
      break;
    case "media":
      showRemoteMedia(t, $("remote-muted"), message);
      break;
    case "error":
      // The call page was opened again in another tab or on another device: it goes on there.
      if (message.code === "replaced") finish(message.message);
      else showError(message.message);
      break;
  }
}

// --- controls ----------------------------------------------------------------------------

function sendMediaState() {
  if (state.local && socket) socket.send({ type: "media", ...mediaState(state.local) });
}

bindMediaToggles(t, {
  getLocal,
  onChanged() {
    if (inCall()) sendMediaState();
  },
});

$("hangup-button").addEventListener("click", () => {
  if (socket?.send({ type: "hangup" })) $("hangup-button").disabled = true;
});

bindDevicePickers(t, { getLocal, sendersOf });
const screenShare = bindScreenShare({ getLocal, sendersOf, inCall, ended: () => state.ended });
$("share-screen").disabled = true;
bindPictureInPicture();

// --- start ---------------------------------------------------------------------------------

if (OVER[config.status]) {
  finish(OVER[config.status]());
} else if (!isCaller && config.status === "ringing") {
  // Opened from a link while it rings: the page's Accept and Decline buttons answer. No
  // socket yet: leaving this page must not count as hanging up.
  setStatus(named(t.ringingYou));
  $("hangup-button").hidden = true;
  setTimeout(() => location.reload(), (config.ring_seconds_left + 1) * 1000);
} else {
  setStatus(isCaller && config.status === "ringing" ? named(t.calling) : t.connecting);
  state.local = await startMedia(t);
  socket = openSocket(config.wsPath, {
    onMessage: oneAtATime(handle),
    onRefused(code) {
      // Reloading shows the sign-in page or a "not found"; a page replaced has said why.
      if (code !== 4411) location.reload();
    },
  });
  setInterval(() => socket.send({ type: "ping" }), config.heartbeatSeconds * 1000);
  qualityMeter(t, { connections: () => [link.pc], inCall });
  keepSessionAlive(config, () => state.ended);
}
