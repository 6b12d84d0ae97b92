// The visit page, for the patient (waiting room, then call), the visit's doctor (room,
// admission, call) and other doctors scheduled on it (call). Protocol: docs/signalling.md.
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
  hideError,
  setStatus,
  showError,
  showRemoteMedia,
  startMedia,
} from "./call-screen.js";
import { outgoingStream } from "./devices.js";
import { PeerLink } from "./peer.js";
import { startRinging, toneLength } from "./ring.js";
import { openSocket } from "./socket.js";

const config = JSON.parse(document.getElementById("visit-config").textContent);
const t = JSON.parse(document.getElementById("visit-strings").textContent);
const $ = (id) => document.getElementById(id);
const isDoctor = config.role === "doctor";
const isPatient = config.role === "patient";

const state = {
  status: config.status,
  me: null, // our `peer`, from the server's hello
  wantReady: false,
  local: null,
  ended: false,
  // The patient's join window: closed until it opens (a timer), or for good once it has ended.
  joinOpen: !(config.joinOpensIn > 0 || config.joinClosed),
  joinClosed: Boolean(config.joinClosed),
};
const inCall = () => state.status === "in_call";
// Tests and benchmarks read the connections' statistics through this handle: `pc` is the
// connection to the primary other participant, `pcs` every connection by `peer`.
window.consulta = {
  get pc() {
    return primary()?.link.pc || null;
  },
  get pcs() {
    return Object.fromEntries([...others.values()].map((o) => [o.peer, o.link.pc]));
  },
  get status() {
    return state.status;
  },
};

// --- peer connections: one per other participant (a mesh) ------------------------------

// The other participants by their `peer`: { peer, role, name, link, tile, present, graceTimer }.
const others = new Map();

// The one this page is about: the patient for doctors, the visit's doctor for the patient.
// Their picture fills the stage; everyone else gets a smaller tile.
function isPrimary(role) {
  return config.role === "patient" ? role === "doctor" : role === "patient";
}

function primary() {
  for (const other of others.values()) if (isPrimary(other.role)) return other;
  return null;
}

function primaryPresent() {
  const other = primary();
  return Boolean(other && other.present);
}

// "p…" the patient, "g…" the guest of a visit without a patient record (in the patient's seat).
function roleOfPeer(peer) {
  return peer.startsWith("p") || peer.startsWith("g") ? "patient" : "clinician";
}

// Of every two participants, the one whose `peer` sorts first makes the offers: the doctors
// ("d…") offer to the patient ("p…"), and between doctors it is settled by their numbers.
function weOffer(peer) {
  return state.me !== null && state.me < peer;
}

function tileOf(other) {
  if (isPrimary(other.role)) {
    return { video: $("remote-video"), muted: $("remote-muted"), figure: null };
  }
  const figure = document.createElement("figure");
  figure.className = "remote extra";
  figure.dataset.peer = other.peer;
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  const caption = document.createElement("figcaption");
  caption.textContent = other.name || "";
  const muted = document.createElement("p");
  muted.className = "remote-muted";
  muted.hidden = true;
  figure.append(video, caption, muted);
  $("extras").append(figure);
  const sink = $("speaker-select").value;
  if (sink && video.setSinkId) video.setSinkId(sink).catch(() => {});
  return { video, muted, figure };
}

function otherFor(peer, role, name) {
  let other = others.get(peer);
  if (!other) {
    other = { peer, role: role || roleOfPeer(peer), name: name || "", present: false };
    other.tile = tileOf(other);
    other.link = new PeerLink({
      peerId: peer,
      offerer: weOffer(peer),
      iceServers: config.iceServers,
      iceTransportPolicy: config.iceTransportPolicy,
      getLocal: () => outgoingStream(state.local),
      send: (message) => socket.send({ ...message, to: peer }),
      handlers: {
        onTrack(stream) {
          if (other.tile.video.srcObject !== stream) other.tile.video.srcObject = stream;
        },
        onConnected() {
          setStatus(t.inCall);
        },
        onRestart() {
          setStatus(t.reconnecting);
        },
        onStall() {
          if (isPrimary(other.role) && inCall()) setStatus(t.reconnecting);
        },
        onResume() {
          if (isPrimary(other.role) && inCall()) setStatus(t.inCall);
        },
        canRestart: () => other.present && socket.open && inCall(),
      },
    });
    others.set(peer, other);
  } else if (name) {
    other.name = name;
    if (other.tile.figure) other.tile.figure.querySelector("figcaption").textContent = name;
  }
  return other;
}

// The other participant is gone (or gone for longer than the grace period).
function hangUp(other) {
  clearTimeout(other.graceTimer);
  other.present = false;
  other.link.hangUp();
  other.tile.video.srcObject = null;
  other.tile.muted.hidden = true;
  if (other.tile.figure) {
    other.tile.figure.remove();
    others.delete(other.peer);
  }
}

function links() {
  return [...others.values()].map((other) => other.link);
}

function sendersOf(kind) {
  return links()
    .map((link) => link.sender(kind))
    .filter(Boolean);
}

async function offerTo(other) {
  if (state.status !== "in_call" || !other.present || !weOffer(other.peer)) return;
  await other.link.offer();
}

async function onOffer(message) {
  const other = otherFor(message.from);
  other.present = true;
  await other.link.onOffer(message.sdp);
  sendMediaState();
}

async function onAnswer(message) {
  const other = others.get(message.from);
  if (other && (await other.link.onAnswer(message.sdp))) sendMediaState();
}

async function onIce(message) {
  const other = others.get(message.from);
  if (other) await other.link.onIce(message.candidate);
}

// --- visit state -------------------------------------------------------------------

function describeDoctorWait() {
  if (state.status === "waiting") return isDoctor ? t.doctorPatientWaiting : t.clinicianWaiting;
  return primaryPresent() ? t.doctorPatientConnected : t.doctorNoPatient;
}

// One round of the person's ringtone: "you are let in" for the patient, "the patient is
// ready" for the visit's doctor.
function ringOnce() {
  if (!config.ring) return;
  const stop = startRinging(config.ring);
  setTimeout(stop, toneLength(config.ring.tone) * 1000);
}

// A pressed button that disables itself would drop the keyboard's focus to the page's top:
// it goes to the next control one would use instead.
function disableKeepingFocus(button, next) {
  const hadFocus = document.activeElement === button;
  button.disabled = true;
  if (hadFocus) next.focus();
}

// The patient before "I'm ready": what to do now, as the join window allows.
function previewStatus() {
  if (state.joinOpen) return t.preview;
  return state.joinClosed ? t.joinClosed : t.previewEarly;
}

async function applyStatus(status) {
  const previous = state.status;
  state.status = status;
  if (state.refusalShown && previous !== status) {
    // A refusal is about what was; the visit has moved on.
    hideError();
    state.refusalShown = false;
  }
  if (previous !== status && !state.ended) {
    if (isPatient && previous === "waiting" && status === "in_call") ringOnce();
    if (isDoctor && status === "waiting") ringOnce();
  }
  screenShare.update();
  if (status === "ended") {
    finish(t.ended);
    return;
  }
  if (status === "in_call" && previous !== "in_call") {
    for (const other of others.values()) await offerTo(other);
  }
  if (!isPatient) {
    if (isDoctor) $("admit-button").disabled = status !== "waiting";
    if (status === "in_call") setStatus(primaryPresent() ? t.connecting : t.peerLeft);
    else setStatus(describeDoctorWait());
    return;
  }
  $("ready-button").disabled = status !== "scheduled" || !state.joinOpen;
  if (status === "scheduled") {
    // Back after a lost connection: we had already said we were ready.
    if (state.wantReady) socket.send({ type: "ready" });
    else setStatus(previewStatus());
  } else if (status === "waiting") {
    setStatus(t.waiting);
  } else if (status === "in_call") {
    setStatus(t.connecting);
  }
}

function showGone(other) {
  if (state.status !== "in_call") {
    if (!isPatient) setStatus(describeDoctorWait());
  } else if (isPrimary(other.role)) {
    setStatus(t.peerLeft);
  }
}

// The doctor's guest link box: the guest's page connecting means the link was opened.
function noteGuestArrived(message) {
  const line = document.getElementById("guest-link-state");
  if (!line || line.hasAttribute("data-opened") || !message.peer.startsWith("g")) return;
  const time = new Date().toLocaleTimeString(document.documentElement.lang, {
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
    timeZone: config.timeZone,
  });
  line.textContent = t.guestOpened.replace("%(name)s", message.name).replace("%(time)s", time);
  line.setAttribute("data-opened", "");
}

async function onPresence(message) {
  if (!message.peer) return;
  if (message.state === "joined" || message.state === "here") noteGuestArrived(message);
  const other = otherFor(message.peer, message.role, message.name);
  clearTimeout(other.graceTimer);
  if (message.state === "dropped" && state.status === "in_call") {
    // Lost, not gone: keep the call open for the grace period; it may resume by itself.
    if (isPrimary(other.role)) setStatus(t.peerReconnecting);
    other.graceTimer = setTimeout(() => {
      hangUp(other);
      showGone(other);
    }, config.reconnectGraceSeconds * 1000);
    return;
  }
  if (message.state === "left" || message.state === "dropped") {
    hangUp(other);
    showGone(other);
    return;
  }
  // joined or here: a newcomer, or someone (back) in the room; the offerer negotiates afresh.
  other.present = true;
  if (state.status === "in_call") {
    await offerTo(other);
  } else if (!isPatient) {
    setStatus(describeDoctorWait());
  } else if (state.status === "waiting" && other.role === "doctor") {
    setStatus(`${t.waiting} ${t.doctorPresent}`);
  }
}

function onRemoteMedia(message) {
  const other = others.get(message.from);
  if (other) showRemoteMedia(t, other.tile.muted, message);
}

function finish(text) {
  state.ended = true;
  screenShare.stop();
  for (const other of others.values()) other.link.close();
  if (state.local) for (const track of state.local.getTracks()) track.stop();
  for (const button of document.querySelectorAll(".controls button")) button.disabled = true;
  setStatus(text);
  socket.close();
}

// --- elapsed time and connection quality -----------------------------------------------

if (!config.selfView) $("local-figure").hidden = true;

const clock = elapsedClock(t, config.serverTime);

function showElapsed(startedAt) {
  state.startedAt = startedAt;
  clock.show(config.showElapsed && inCall() ? startedAt : null);
}

// The worst of the connections to the other participants.
qualityMeter(t, { connections: () => links().map((link) => link.pc), inCall });

function showWaitingMessage(text) {
  const box = $("waiting-message");
  if (!box) return;
  box.querySelector("span").textContent = text || "";
  box.hidden = !text;
}

async function handle(message) {
  switch (message.type) {
    case "hello":
      state.me = message.peer || (isPatient ? "p" : "d");
      showWaitingMessage(message.message);
      await applyStatus(message.status);
      showElapsed(message.started_at);
      break;
    case "state":
      showWaitingMessage(message.message);
      await applyStatus(message.status);
      showElapsed(message.started_at);
      break;
    case "settings":
      // The doctor changed this patient's room settings while the page is open.
      config.selfView = message.self_view;
      config.showElapsed = message.show_elapsed;
      $("local-figure").hidden = !config.selfView;
      showElapsed(state.startedAt);
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
        state.joinClosed = message.code === "too_late";
        setStatus(previewStatus());
      }
      if (["full", "link_renewed", "replaced"].includes(message.code)) {
        finish(message.message);
        return;
      }
      if (isDoctor && message.code === "busy") {
        $("admit-button").disabled = state.status !== "waiting"; // try again after ending
      }
      // A call left open elsewhere (the tab closed without End): a way back to end it.
      showError(
        message.message,
        message.visit_url
          ? { href: message.visit_url, text: t.openOtherVisit }
          : message.call_url
            ? { href: message.call_url, text: t.openCall }
            : null,
      );
      state.refusalShown = true;
      break;
  }
}

// --- controls ----------------------------------------------------------------------

const getLocal = () => state.local;

function sendMediaState() {
  if (state.local) socket.send({ type: "media", ...mediaState(state.local) });
}

bindMediaToggles(t, {
  getLocal,
  onChanged() {
    if (inCall()) sendMediaState();
  },
});

if (isDoctor) {
  $("admit-button").addEventListener("click", () => {
    disableKeepingFocus($("admit-button"), $("end-button"));
    socket.send({ type: "admit" });
  });
  $("end-button").addEventListener("click", () => {
    if (window.confirm(t.confirmEnd)) socket.send({ type: "end" });
  });
  $("notice-form").addEventListener("submit", (event) => {
    event.preventDefault();
    // Never lose the message silently: say so when the room is not connected right now.
    if (!socket.send({ type: "notice", text: $("notice-text").value })) showError(t.notSent);
  });
  // The patient's room settings, saved without leaving the page (a call may be on).
  const settingsForm = document.getElementById("room-settings-form");
  settingsForm?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const said = $("room-settings-status");
    said.textContent = "";
    try {
      const response = await fetch(settingsForm.action, {
        method: "POST",
        body: new FormData(settingsForm),
        headers: { "X-Requested-With": "fetch" },
        credentials: "same-origin",
      });
      said.textContent = (await response.json()).message;
    } catch {
      said.textContent = t.settingsNotSaved;
    }
  });
} else {
  // The patient and the other doctors may leave; the visit goes on for the others.
  $("leave-button").addEventListener("click", () => {
    finish(t.youLeft);
    $("rejoin").hidden = false;
  });
}
if (isPatient) {
  if (config.joinOpensIn > 0) {
    // The waiting room opens by itself at its time.
    setTimeout(() => {
      state.joinOpen = true;
      $("join-notice").hidden = true;
      $("ready-button").disabled = state.status !== "scheduled";
      if (state.status === "scheduled") setStatus(previewStatus());
    }, config.joinOpensIn * 1000);
  }
  $("ready-button").addEventListener("click", () => {
    state.wantReady = true;
    disableKeepingFocus($("ready-button"), $("leave-button"));
    socket.send({ type: "ready" });
  });
}

// --- devices, screen sharing, picture-in-picture -------------------------------------------

bindDevicePickers(t, { getLocal, sendersOf });
const screenShare = bindScreenShare({ getLocal, sendersOf, inCall, ended: () => state.ended });
bindPictureInPicture();

// A guest has no sign-in session: no keepalive path.
keepSessionAlive(config, () => state.ended);

setStatus(t.connecting);
state.local = await startMedia(t);
const socket = openSocket(config.wsPath, {
  onMessage: oneAtATime(handle),
  onRefused(code) {
    // Reloading shows the sign-in page or a "not found"; a full room, a guest sent away by
    // a renewed link, or a page whose visit was opened again elsewhere, has said why.
    if (![4409, 4410, 4411].includes(code)) location.reload();
  },
});
