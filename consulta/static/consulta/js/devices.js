// The visit page's devices: choosing the camera, the microphone and the speaker (during a
// call too: the new track replaces the old one in the connection, no renegotiation), the
// microphone level, screen sharing and picture-in-picture.
const $ = (id) => document.getElementById(id);

function fill(select, devices, kind, currentId) {
  select.replaceChildren(
    ...devices
      .filter((d) => d.kind === kind)
      .map((d, index) => {
        const option = new Option(d.label || `${kind} ${index + 1}`, d.deviceId);
        option.selected = d.deviceId === currentId;
        return option;
      }),
  );
}

export async function listDevices(stream) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const devices = await navigator.mediaDevices.enumerateDevices();
  const current = (kind) => {
    const track = kind === "video" ? stream?.getVideoTracks()[0] : stream?.getAudioTracks()[0];
    return track?.getSettings().deviceId;
  };
  fill($("camera-select"), devices, "videoinput", current("video"));
  fill($("mic-select"), devices, "audioinput", current("audio"));
  if ("setSinkId" in HTMLMediaElement.prototype) {
    fill($("speaker-select"), devices, "audiooutput", "default");
    $("speaker-field").hidden = false;
  }
}

// Swap one kind of track of `stream` for the chosen device, in the preview and in the call:
// senders() gives the RTCRtpSenders of that kind, one per connection.
export async function switchDevice(stream, senders, kind, deviceId) {
  const constraints =
    kind === "video"
      ? { video: { deviceId: { exact: deviceId }, width: { ideal: 1280 }, height: { ideal: 720 } } }
      : { audio: { deviceId: { exact: deviceId } } };
  const fresh = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks()[0];
  const old = kind === "video" ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0];
  if (old) {
    fresh.enabled = old.enabled; // a muted microphone stays muted
    stream.removeTrack(old);
    old.stop();
  }
  stream.addTrack(fresh);
  await Promise.all(senders(kind).map((sender) => sender.replaceTrack(fresh)));
  return fresh;
}

export function watchMicLevel(stream) {
  const track = stream?.getAudioTracks()[0];
  if (!track || !window.AudioContext) return;
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const meter = $("mic-level");
  setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let peak = 0;
    for (const sample of samples) peak = Math.max(peak, Math.abs(sample));
    meter.value = track.enabled ? Math.min(1, peak * 2) : 0;
  }, 150);
  // Browsers start audio contexts suspended until the page has been used.
  document.addEventListener("click", () => context.resume(), { once: true });
  context.resume().catch(() => {});
}

// Share the screen instead of the camera; the camera comes back when sharing stops (by the
// button, or by the browser's own "stop sharing"). senders("video") gives the video senders
// of the connections at that moment (connections made while sharing send the screen: see
// screenTrack()).
let sharedScreen = null;

export async function shareScreen(stream, senders, onStop) {
  const screen = (await navigator.mediaDevices.getDisplayMedia({ video: true })).getVideoTracks()[0];
  sharedScreen = screen;
  await Promise.all(senders("video").map((sender) => sender.replaceTrack(screen)));
  const stop = async () => {
    if (sharedScreen !== screen) return;
    sharedScreen = null;
    if (screen.readyState === "live") screen.stop();
    const camera = stream.getVideoTracks()[0];
    if (camera) await Promise.all(senders("video").map((sender) => sender.replaceTrack(camera)));
    onStop();
  };
  screen.addEventListener("ended", stop, { once: true });
  return stop;
}

// What a new connection should send: the camera's stream, or the screen while it is shared.
export function outgoingStream(stream) {
  if (!stream || !sharedScreen) return stream;
  return new MediaStream([...stream.getAudioTracks(), sharedScreen]);
}
