// What the two call screens do the same way, the video visit (visit.js) and the internal call
// between colleagues (internal-call.js): the camera and microphone, their buttons and
// pickers, screen sharing, picture-in-picture, the elapsed time and the connection quality.
// The elements are the shared templates' (templates/call_screen/); `t` holds the page's
// strings, which include the shared ones (visits/strings.py, call_screen_strings()). Each
// page keeps its own connections and state, and lends them through small functions:
// getLocal() gives our camera's stream (or null), sendersOf(kind) the RTCRtpSenders of that
// kind of every connection, inCall() whether the call is on right now.
import { listDevices, shareScreen, switchDevice, watchMicLevel } from "./devices.js";
import { connectionQuality } from "./peer.js";

const $ = (id) => document.getElementById(id);

export function setStatus(text) {
  $("call-status").textContent = text;
}

// `link` ({href, text}), when given, follows the sentence: what to do about it.
export function showError(text, link = null) {
  const box = $("media-error");
  box.textContent = text;
  if (link) {
    const a = document.createElement("a");
    a.href = link.href;
    a.textContent = link.text;
    box.append(" ", a);
  }
  box.hidden = false;
}

export function hideError() {
  $("media-error").hidden = true;
}

// Our camera and microphone in the preview, the device pickers filled and the microphone's
// level shown; the stream, or null (the reason shown) when the browser gives none.
export async function startMedia(t) {
  if (!navigator.mediaDevices || !window.RTCPeerConnection) {
    showError(t.noWebRTC);
    return null;
  }
  let local;
  try {
    local = await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: { ideal: 1280 }, height: { ideal: 720 } },
    });
    $("local-video").srcObject = local;
  } catch (error) {
    const messages = {
      NotAllowedError: t.mediaDenied,
      SecurityError: t.mediaDenied,
      NotFoundError: t.mediaMissing,
      OverconstrainedError: t.mediaMissing,
      NotReadableError: t.mediaBusy,
    };
    showError(messages[error.name] || t.mediaMissing);
    return null;
  }
  await listDevices(local);
  watchMicLevel(local);
  navigator.mediaDevices.addEventListener("devicechange", () => listDevices(local));
  return local;
}

// The microphone and camera buttons: they turn our tracks off and on (the connections keep
// them: nothing is negotiated), then onChanged() lets the page tell the others.
export function bindMediaToggles(t, { getLocal, onChanged }) {
  const bind = (buttonId, kind, offLabel, onLabel) => {
    const button = $(buttonId);
    button.addEventListener("click", () => {
      const local = getLocal();
      if (!local) return;
      const tracks = kind === "audio" ? local.getAudioTracks() : local.getVideoTracks();
      const muted = button.getAttribute("aria-pressed") !== "true";
      for (const track of tracks) track.enabled = !muted;
      button.setAttribute("aria-pressed", String(muted));
      button.textContent = muted ? onLabel : offLabel;
      onChanged();
    });
  };
  bind("toggle-mic", "audio", t.muteMic, t.unmuteMic);
  bind("toggle-cam", "video", t.cameraOff, t.cameraOn);
}

// Whether each of our tracks of that kind is on: the `media` message's content.
export function mediaState(local) {
  return {
    audio: local.getAudioTracks().some((track) => track.enabled),
    video: local.getVideoTracks().some((track) => track.enabled),
  };
}

// The other person's "microphone off · camera off" note under their picture.
export function showRemoteMedia(t, box, message) {
  const notes = [];
  if (!message.audio) notes.push(t.remoteMicOff);
  if (!message.video) notes.push(t.remoteCamOff);
  box.textContent = notes.join(" · ");
  box.hidden = notes.length === 0;
}

// The camera, microphone and speaker pickers: a new camera or microphone replaces the track
// in the preview and in every connection; a new speaker plays every remote picture's sound.
export function bindDevicePickers(t, { getLocal, sendersOf }) {
  const onDeviceChosen = async (kind, deviceId) => {
    const local = getLocal();
    if (!local) return;
    try {
      await switchDevice(local, sendersOf, kind, deviceId);
      $("local-video").srcObject = local;
    } catch (error) {
      console.warn("could not switch device", error);
      showError(t.mediaBusy);
    }
  };
  $("camera-select").addEventListener("change", (e) => onDeviceChosen("video", e.target.value));
  $("mic-select").addEventListener("change", (e) => onDeviceChosen("audio", e.target.value));
  $("speaker-select").addEventListener("change", (e) => {
    for (const video of document.querySelectorAll(".stage .remote video")) {
      video.setSinkId(e.target.value).catch((error) => console.warn(error));
    }
  });
}

// The "Share screen" button and the banner shown while the screen is shared. ended() says
// whether the page has finished (the button then stays off). Returns update(), which turns
// the button on while the call is on and nothing is shared, and stop(), which stops sharing.
export function bindScreenShare({ getLocal, sendersOf, inCall, ended }) {
  const button = $("share-screen");
  let stopSharing = null;
  button.hidden = !(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
  button.addEventListener("click", async () => {
    const local = getLocal();
    if (!inCall() || !local || stopSharing) return;
    try {
      stopSharing = await shareScreen(local, sendersOf, () => {
        stopSharing = null;
        $("sharing-banner").hidden = true;
        button.disabled = ended();
      });
    } catch (error) {
      console.warn("screen sharing refused", error); // the person cancelled the browser's picker
      return;
    }
    $("sharing-banner").hidden = false;
    button.disabled = true;
  });
  $("stop-sharing").addEventListener("click", () => {
    if (stopSharing) stopSharing();
  });
  return {
    update() {
      button.disabled = !inCall() || Boolean(stopSharing);
    },
    stop() {
      if (stopSharing) stopSharing().catch(() => {});
    },
  };
}

// The picture-in-picture button, for the main remote picture, where the browser has it.
export function bindPictureInPicture() {
  $("pip-button").hidden = !document.pictureInPictureEnabled;
  $("pip-button").addEventListener("click", () => {
    const video = $("remote-video");
    if (document.pictureInPictureElement) document.exitPictureInPicture();
    else if (video.srcObject) video.requestPictureInPicture().catch((error) => console.warn(error));
  });
}

// The call's elapsed time, ticking every second. serverTime: the page's server time (for
// the difference between the server's clock and ours). show(startedAt) counts from that
// moment of the server's clock, or hides the time without one; stop() stops counting.
export function elapsedClock(t, serverTime) {
  const skew = serverTime ? Date.parse(serverTime) - Date.now() : 0;
  const box = $("elapsed");
  let timer = null;
  return {
    show(startedAt) {
      clearInterval(timer);
      if (!startedAt) {
        box.hidden = true;
        return;
      }
      const started = Date.parse(startedAt) - skew;
      const tick = () => {
        const seconds = Math.max(0, Math.floor((Date.now() - started) / 1000));
        const mm = String(Math.floor(seconds / 60)).padStart(2, "0");
        const ss = String(seconds % 60).padStart(2, "0");
        box.textContent = t.elapsed.replace("%(time)s", `${mm}:${ss}`);
      };
      tick();
      box.hidden = false;
      timer = setInterval(tick, 1000);
    },
    stop() {
      clearInterval(timer);
    },
  };
}

// The call's connection quality every few seconds, in three words: the worst of the
// connected connections among connections() (RTCPeerConnections, or null), while inCall().
const QUALITY_ORDER = ["good", "fair", "poor"];

export function qualityMeter(t, { connections, inCall }) {
  const box = $("quality");
  const measure = async () => {
    const connected = connections().filter((pc) => pc && pc.connectionState === "connected");
    if (!inCall() || connected.length === 0) {
      box.hidden = true;
      return;
    }
    const levels = await Promise.all(connected.map(connectionQuality));
    const level = levels.reduce((a, b) => (QUALITY_ORDER.indexOf(b) > QUALITY_ORDER.indexOf(a) ? b : a));
    box.textContent = { good: t.qualityGood, fair: t.qualityFair, poor: t.qualityPoor }[level];
    box.dataset.level = level;
    box.hidden = false;
  };
  setInterval(() => measure().catch(() => {}), 3000);
}

// The socket's messages handled one at a time, in order: an ICE candidate must not overtake
// the offer it belongs to while the offer is still being applied. Returns the onMessage.
export function oneAtATime(handle) {
  let queue = Promise.resolve();
  return (message) => {
    queue = queue.then(() => handle(message)).catch((error) => console.error(error));
  };
}

// Calls are long and make no page requests: tell the server the session is in use, until
// ended() (no keepalivePath, as for a guest without a sign-in session: nothing to keep).
export function keepSessionAlive({ keepalivePath, csrfToken }, ended) {
  setInterval(
    () => {
      if (ended() || !keepalivePath) return;
      fetch(keepalivePath, {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken },
        credentials: "same-origin",
      });
    },
    4 * 60 * 1000,
  );
}
