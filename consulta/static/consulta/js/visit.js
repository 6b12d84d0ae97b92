// The visit page, for both the patient (waiting room, then call) and the doctor (room,
// admission, call). Protocol: docs/signalling.md. The doctor always makes the offer.
import { listDevices, shareScreen, switchDevice, watchMicLevel } from "./devices.js";
import { openSocket } from "./socket.js";

const config = JSON.parse(document.getElementById("visit-config").textContent);
const t = JSON.parse(document.getElementById("visit-strings").textContent);
const $ = (id) => document.getElementById(id);
const isDoctor = config.role === "doctor";

const state = {
  status: config.status,
  peerPresent: false,
  wantReady: false,
  local: null,
  pc: null,
  pendingIce: [],
  ended: false,
  // The patient's join window: closed until it opens (a timer), or for good once it has ended.
  joinOpen: !(config.joinOpensIn > 0 || config.joinClosed),
  graceTimer: null, // while the other side's connection has dropped
  elapsedTimer: null,
  stopSharing: null, // while the screen is shared
  clockSkew: 0, // server clock minus ours, from the page's configuration
};
if (config.serverTime) state.clockSkew = Date.parse(config.serverTime) - Date.now();
// Tests and benchmarks read the peer connection's statistics through this handle.
window.consulta = {
  get pc() {
    return state.pc;
  },
  get status() {
    return state.status;
  },
};

function setStatus(text) {
  $("call-status").textContent = text;
}

function showError(text) {
  const box = $("media-error");
  box.textContent = text;
  box.hidden = false;
}

async function startMedia() {
  if (!navigator.mediaDevices || !window.RTCPeerConnection) {
    showError(t.noWebRTC);
    return;
  }
  try {
    state.local = await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: { ideal: 1280 }, height: { ideal: 720 } },
    });
    $("local-video").srcObject = state.local;
  } catch (error) {
    const messages = {
      NotAllowedError: t.mediaDenied,
      SecurityError: t.mediaDenied,
      NotFoundError: t.mediaMissing,
      OverconstrainedError: t.mediaMissing,
      NotReadableError: t.mediaBusy,
    };
    showError(messages[error.name] || t.mediaMissing);
  }
}

// --- peer connection -------------------------------------------------------------

function closePeer() {
  if (state.stopSharing) {
    // A new connection starts from the camera: sharing ends with the old one.
    state.stopSharing().catch(() => {});
  }
  if (state.pc) {
    state.pc.onicecandidate = null;
    state.pc.ontrack = null;
    state.pc.close();
  }
  state.pc = null;
  state.pendingIce = [];
  $("remote-video").srcObject = null;
}

function createPeer() {
  closePeer();
  // One transport for audio and video: half the ICE candidates to gather and relay.
  const pc = new RTCPeerConnection({
    iceServers: config.iceServers,
    iceTransportPolicy: config.iceTransportPolicy || "all",
    bundlePolicy: "max-bundle",
  });
  state.pc = pc;
  if (state.local) {
    for (const track of state.local.getTracks()) {
      const sender = pc.addTrack(track, state.local);
      if (track.kind === "video") startSmall(pc, sender);
    }
  } else {
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addTransceiver("video", { direction: "recvonly" });
  }
  pc.onicecandidate = (event) => {
    socket.send({ type: "ice", candidate: event.candidate ? event.candidate.toJSON() : null });
  };
  pc.ontrack = (event) => {
    const video = $("remote-video");
    const stream = event.streams[0] || new MediaStream([event.track]);
    if (video.srcObject !== stream) video.srcObject = stream;
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "connected") setStatus(t.inCall);
  };
  // A network change breaks the media path: the doctor, who always offers, negotiates
  // afresh (a new offer gathers new candidates) unless the path comes back by itself.
  pc.oniceconnectionstatechange = () => {
    if (!isDoctor || state.pc !== pc || state.status !== "in_call") return;
    if (pc.iceConnectionState === "failed") restartIce(pc);
    // Back after an outage: the video decoder may wait seconds for a key frame; a fresh
    // offer brings one at once.
    if (pc.iceConnectionState === "connected" && pc.hadOutage) restartIce(pc);
    if (pc.iceConnectionState === "disconnected") {
      pc.hadOutage = true;
      setTimeout(() => {
        if (state.pc === pc && ["disconnected", "failed"].includes(pc.iceConnectionState)) {
          restartIce(pc);
        }
      }, ICE_GRACE_MS);
    }
  };
  return pc;
}

// The encoder starts at a low bitrate and drops full-size frames until it has ramped up, so
// the first picture of an HD camera comes late. Send half size first, full size once the
// call is up: the other side sees the doctor or patient sooner, and in HD seconds later.
const FULL_SIZE_AFTER_MS = 1500;

async function setScale(sender, factor) {
  const parameters = sender.getParameters();
  if (!parameters.encodings || parameters.encodings.length === 0) return;
  parameters.encodings[0].scaleResolutionDownBy = factor;
  try {
    await sender.setParameters(parameters);
  } catch (error) {
    console.warn("could not change the video size", error);
  }
}

function startSmall(pc, sender) {
  setScale(sender, 2);
  pc.addEventListener("connectionstatechange", () => {
    if (pc.connectionState !== "connected") return;
    setTimeout(() => {
      if (state.pc === pc) setScale(sender, 1);
    }, FULL_SIZE_AFTER_MS);
  });
}

async function flushIce(pc) {
  const pending = state.pendingIce;
  state.pendingIce = [];
  for (const candidate of pending) await addIce(pc, candidate);
}

async function addIce(pc, candidate) {
  try {
    await pc.addIceCandidate(candidate || undefined);
  } catch (error) {
    console.warn("ICE candidate refused", error);
  }
}

const ICE_GRACE_MS = 2000;

function restartIce(pc) {
  if (state.pc !== pc || !state.peerPresent || !socket.open) return;
  setStatus(t.reconnecting);
  makeOffer().catch((error) => console.error(error));
}

async function makeOffer() {
  const pc = createPeer();
  await pc.setLocalDescription(await pc.createOffer());
  socket.send({ type: "offer", sdp: pc.localDescription.sdp });
}

async function onOffer(message) {
  const pc = createPeer();
  await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
  await flushIce(pc);
  await pc.setLocalDescription(await pc.createAnswer());
  socket.send({ type: "answer", sdp: pc.localDescription.sdp });
  sendMediaState();
}

async function onAnswer(message) {
  const pc = state.pc;
  if (!pc || pc.signalingState !== "have-local-offer") return;
  await pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
  await flushIce(pc);
  sendMediaState();
}

async function onIce(message) {
  const pc = state.pc;
  if (!pc || !pc.remoteDescription) {
    state.pendingIce.push(message.candidate);
    return;
  }
  await addIce(pc, message.candidate);
}

// --- visit state -------------------------------------------------------------------

function describeDoctorWait() {
  if (state.status === "waiting") return t.doctorPatientWaiting;
  return state.peerPresent ? t.doctorPatientConnected : t.doctorNoPatient;
}

async function applyStatus(status) {
  const previous = state.status;
  state.status = status;
  $("share-screen").disabled = status !== "in_call" || Boolean(state.stopSharing);
  if (status === "ended") {
    finish();
    return;
  }
  if (isDoctor) {
    $("admit-button").disabled = status !== "waiting";
    if (status === "in_call") {
      setStatus(state.peerPresent ? t.connecting : t.peerLeft);
      if (previous !== "in_call" && state.peerPresent) await makeOffer();
    } else {
      setStatus(describeDoctorWait());
    }
    return;
  }
  $("ready-button").disabled = status !== "scheduled" || !state.joinOpen;
  if (status === "scheduled") {
    // Back after a lost connection: we had already said we were ready.
    if (state.wantReady) socket.send({ type: "ready" });
    else setStatus(t.preview);
  } else if (status === "waiting") {
    setStatus(t.waiting);
  } else if (status === "in_call") {
    setStatus(t.connecting);
  }
}

async function onPresence(message) {
  const peerRole = isDoctor ? "patient" : "doctor";
  if (message.role !== peerRole) return;
  clearTimeout(state.graceTimer);
  if (message.state === "dropped" && state.status === "in_call") {
    // Lost, not gone: keep the call open for the grace period; it may resume by itself.
    setStatus(t.peerReconnecting);
    state.graceTimer = setTimeout(() => {
      state.peerPresent = false;
      closePeer();
      setStatus(t.peerLeft);
    }, config.reconnectGraceSeconds * 1000);
    return;
  }
  if (message.state === "left" || message.state === "dropped") {
    state.peerPresent = false;
    if (state.status === "in_call") {
      closePeer();
      setStatus(t.peerLeft);
    } else if (isDoctor) {
      setStatus(describeDoctorWait());
    }
    return;
  }
  state.peerPresent = true;
  if (isDoctor) {
    // The patient (re)joined an ongoing call: negotiate afresh.
    if (state.status === "in_call") await makeOffer();
    else setStatus(describeDoctorWait());
  } else if (state.status === "waiting") {
    setStatus(`${t.waiting} ${t.doctorPresent}`);
  }
}

function onRemoteMedia(message) {
  const notes = [];
  if (!message.audio) notes.push(t.remoteMicOff);
  if (!message.video) notes.push(t.remoteCamOff);
  const box = $("remote-muted");
  box.textContent = notes.join(" · ");
  box.hidden = notes.length === 0;
}

function finish() {
  state.ended = true;
  closePeer();
  if (state.local) for (const track of state.local.getTracks()) track.stop();
  for (const button of document.querySelectorAll(".controls button")) button.disabled = true;
  setStatus(t.ended);
  socket.close();
}

// --- elapsed time and connection quality -----------------------------------------------

if (!config.selfView) $("local-figure").hidden = true;

function showElapsed(startedAt) {
  clearInterval(state.elapsedTimer);
  const box = $("elapsed");
  if (!config.showElapsed || !startedAt || state.status !== "in_call") {
    box.hidden = true;
    return;
  }
  const started = Date.parse(startedAt) - state.clockSkew;
  const tick = () => {
    const seconds = Math.max(0, Math.floor((Date.now() - started) / 1000));
    const mm = String(Math.floor(seconds / 60)).padStart(2, "0");
    const ss = String(seconds % 60).padStart(2, "0");
    box.textContent = t.elapsed.replace("%(time)s", `${mm}:${ss}`);
  };
  tick();
  box.hidden = false;
  state.elapsedTimer = setInterval(tick, 1000);
}

// Round-trip time and lost packets of the call, every few seconds, in three words.
async function measureQuality() {
  const pc = state.pc;
  const box = $("quality");
  if (!pc || state.status !== "in_call" || pc.connectionState !== "connected") {
    box.hidden = true;
    return;
  }
  let rtt = 0;
  let lost = 0;
  let received = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === "candidate-pair" && r.nominated && r.currentRoundTripTime) {
      rtt = r.currentRoundTripTime;
    }
    if (r.type === "inbound-rtp") {
      lost += r.packetsLost || 0;
      received += r.packetsReceived || 0;
    }
  });
  const lossShare = received + lost > 0 ? lost / (received + lost) : 0;
  const [text, level] =
    rtt > 0.5 || lossShare > 0.1
      ? [t.qualityPoor, "poor"]
      : rtt > 0.25 || lossShare > 0.03
        ? [t.qualityFair, "fair"]
        : [t.qualityGood, "good"];
  box.textContent = text;
  box.dataset.level = level;
  box.hidden = false;
}

setInterval(() => measureQuality().catch(() => {}), 3000);

function showWaitingMessage(text) {
  const box = $("waiting-message");
  if (!box) return;
  box.querySelector("span").textContent = text || "";
  box.hidden = !text;
}

async function handle(message) {
  switch (message.type) {
    case "hello":
    case "state":
      showWaitingMessage(message.message);
      await applyStatus(message.status);
      showElapsed(message.started_at);
      break;
    case "presence":
      await onPresence(message);
      break;
    case "offer":
      await onOffer(message);
      break;
    case "answer":
      await onAnswer(message);
      break;
    case "ice":
      await onIce(message);
      break;
    case "media":
      onRemoteMedia(message);
      break;
    case "error":
      if (message.code === "too_early" || message.code === "too_late") {
        state.wantReady = false;
        state.joinOpen = false;
      }
      if (isDoctor && message.code === "busy") {
        $("admit-button").disabled = state.status !== "waiting"; // try again after ending
      }
      showError(message.message);
      break;
  }
}

// --- controls ----------------------------------------------------------------------

function sendMediaState() {
  if (!state.local) return;
  const audio = state.local.getAudioTracks().some((track) => track.enabled);
  const video = state.local.getVideoTracks().some((track) => track.enabled);
  socket.send({ type: "media", audio, video });
}

function bindToggle(buttonId, kind, offLabel, onLabel) {
  const button = $(buttonId);
  button.addEventListener("click", () => {
    if (!state.local) return;
    const tracks = kind === "audio" ? state.local.getAudioTracks() : state.local.getVideoTracks();
    const muted = button.getAttribute("aria-pressed") !== "true";
    for (const track of tracks) track.enabled = !muted;
    button.setAttribute("aria-pressed", String(muted));
    button.textContent = muted ? onLabel : offLabel;
    if (state.status === "in_call") sendMediaState();
  });
}

bindToggle("toggle-mic", "audio", t.muteMic, t.unmuteMic);
bindToggle("toggle-cam", "video", t.cameraOff, t.cameraOn);

if (isDoctor) {
  $("admit-button").addEventListener("click", () => {
    $("admit-button").disabled = true;
    socket.send({ type: "admit" });
  });
  $("end-button").addEventListener("click", () => {
    if (window.confirm(t.confirmEnd)) socket.send({ type: "end" });
  });
  $("notice-form").addEventListener("submit", (event) => {
    event.preventDefault();
    socket.send({ type: "notice", text: $("notice-text").value });
  });
} else {
  if (config.joinOpensIn > 0) {
    // The waiting room opens by itself at its time.
    setTimeout(() => {
      state.joinOpen = true;
      $("join-notice").hidden = true;
      $("ready-button").disabled = state.status !== "scheduled";
    }, config.joinOpensIn * 1000);
  }
  $("ready-button").addEventListener("click", () => {
    state.wantReady = true;
    $("ready-button").disabled = true;
    socket.send({ type: "ready" });
  });
}

// --- devices, screen sharing, picture-in-picture -------------------------------------------

async function onDeviceChosen(kind, deviceId) {
  if (!state.local) return;
  try {
    await switchDevice(state.local, state.pc, kind, deviceId);
    $("local-video").srcObject = state.local;
  } catch (error) {
    console.warn("could not switch device", error);
    showError(t.mediaBusy);
  }
}

$("camera-select").addEventListener("change", (e) => onDeviceChosen("video", e.target.value));
$("mic-select").addEventListener("change", (e) => onDeviceChosen("audio", e.target.value));
$("speaker-select").addEventListener("change", (e) => {
  $("remote-video").setSinkId(e.target.value).catch((error) => console.warn(error));
});

const canShare = Boolean(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
$("share-screen").hidden = !canShare;
$("share-screen").addEventListener("click", async () => {
  if (state.status !== "in_call" || !state.local || state.stopSharing) return;
  try {
    state.stopSharing = await shareScreen(state.local, state.pc, () => {
      state.stopSharing = null;
      $("sharing-banner").hidden = true;
      $("share-screen").disabled = false;
    });
  } catch (error) {
    console.warn("screen sharing refused", error); // the person cancelled the browser's picker
    return;
  }
  $("sharing-banner").hidden = false;
  $("share-screen").disabled = true;
});
$("stop-sharing").addEventListener("click", () => {
  if (state.stopSharing) state.stopSharing();
});

$("pip-button").hidden = !document.pictureInPictureEnabled;
$("pip-button").addEventListener("click", () => {
  const video = $("remote-video");
  if (document.pictureInPictureElement) document.exitPictureInPicture();
  else if (video.srcObject) video.requestPictureInPicture().catch((error) => console.warn(error));
});

// Calls are long and make no page requests: tell the server the session is in use.
setInterval(() => {
  if (state.ended) return;
  fetch(config.keepalivePath, {
    method: "POST",
    headers: { "X-CSRFToken": config.csrfToken },
    credentials: "same-origin",
  });
}, 4 * 60 * 1000);

// Messages are handled one at a time, in order: an ICE candidate must not overtake the
// offer it belongs to while the offer is still being applied.
let queue = Promise.resolve();
setStatus(t.connecting);
await startMedia();
if (state.local) {
  await listDevices(state.local);
  watchMicLevel(state.local);
  navigator.mediaDevices.addEventListener("devicechange", () => listDevices(state.local));
}
const socket = openSocket(config.wsPath, {
  onMessage(message) {
    queue = queue.then(() => handle(message)).catch((error) => console.error(error));
  },
  onRefused() {
    location.reload();
  },
});
