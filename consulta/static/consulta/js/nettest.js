// The waiting room's connection test (docs/operations.md, "Connection test"): a WebRTC
// connection to the server's own peer (consulta/visits/nettest.py), through the same STUN and
// TURN servers and transport policy as the page's calls, with three data channels the page
// creates: "probe" (unordered, no retransmissions: the server echoes every message),
// "upload" (the server counts) and "download" (the server streams).
//
// Verdict thresholds, for a one-to-one video visit (a 360p to 720p call needs about 0.5 to
// 1.5 Mbit/s each way; interactive speech gets hard beyond about 400 ms of round trip):
//   good                    RTT < 150 ms, loss < 2 %, upload and download ≥ 1.5 Mbit/s
//   video may stutter       RTT < 400 ms, loss < 8 %, upload and download ≥ 0.5 Mbit/s
//   audio only recommended  anything worse, or no probe answered at all
// RTT is the median of the probes, jitter the mean absolute difference of consecutive round
// trips. Jitter is shown but does not decide: the browsers' jitter buffers absorb it, and a
// link whose jitter matters shows high round trips and loss as well.
const $ = (id) => document.getElementById(id);
const config = JSON.parse($("visit-config").textContent);
const t = JSON.parse($("nettest-strings").textContent);

const THRESHOLDS = {
  good: { rttMs: 150, lossPercent: 2, mbps: 1.5 },
  stutter: { rttMs: 400, lossPercent: 8, mbps: 0.5 },
};
const PROBES = 40;
const PROBE_INTERVAL_MS = 50;
const PROBE_TIMEOUT_MS = 1000;
const CONNECT_TIMEOUT_MS = 10000;
const GATHER_TIMEOUT_MS = 5000; // then the offer goes with the candidates found so far
const CHUNK_BYTES = 16 * 1024;
const UPLOAD_MS = 2000;
// Small, so that on a slow link the test does not wait long for the queue to drain.
const UPLOAD_AHEAD_BYTES = 256 * 1024;
const REPLY_TIMEOUT_MS = 5000;
const DOWNLOAD_TIMEOUT_MS = 6000;

class TestFailure extends Error {
  constructor(kind, message) {
    super(message || kind);
    this.kind = kind;
    this.serverMessage = message || "";
  }
}

const button = $("nettest-button");
const statusLine = $("nettest-status");
const verdictLine = $("nettest-verdict");
const results = $("nettest-results");
let numbers;
try {
  numbers = new Intl.NumberFormat(document.documentElement.lang || undefined, {
    maximumFractionDigits: 1,
  });
} catch {
  numbers = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
}

// Tests read the last result here.
window.consultaNetTest = { status: "idle" };

function withTimeout(promise, ms, kind) {
  let timer;
  const expiry = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new TestFailure(kind)), ms);
  });
  return Promise.race([promise, expiry]).finally(() => clearTimeout(timer));
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

function opened(channel) {
  if (channel.readyState === "open") return Promise.resolve();
  return new Promise((resolve, reject) => {
    channel.addEventListener("open", () => resolve(), { once: true });
    channel.addEventListener("close", () => reject(new TestFailure("connect")), { once: true });
  });
}

// The server takes no trickled candidates: the offer goes once ICE gathering is complete.
async function connect(pc, channels) {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const response = await fetch(config.connectionTestPath, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": config.csrfToken },
    credentials: "same-origin",
    body: JSON.stringify({ sdp: pc.localDescription.sdp }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.sdp) throw new TestFailure(body.code || "server", body.error);
  await pc.setRemoteDescription({ type: "answer", sdp: body.sdp });
  await Promise.all(channels.map(opened));
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function probeFigures(rtts, sent) {
  const lossPercent = sent ? (100 * (sent - rtts.length)) / sent : 100;
  if (!rtts.length) return { rttMs: null, jitterMs: null, lossPercent };
  let differences = 0;
  for (let i = 1; i < rtts.length; i += 1) differences += Math.abs(rtts[i] - rtts[i - 1]);
  const jitterMs = rtts.length > 1 ? differences / (rtts.length - 1) : 0;
  return { rttMs: median(rtts), jitterMs, lossPercent };
}

// PROBES small messages, one every PROBE_INTERVAL_MS; an echo later than PROBE_TIMEOUT_MS
// counts as lost.
function measureProbes(channel) {
  return new Promise((resolve) => {
    const rtts = new Map(); // sequence number → round trip in ms
    let sent = 0;
    let finished = false;
    let finishTimer = null;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearInterval(ticker);
      clearTimeout(finishTimer);
      channel.onmessage = null;
      const inOrder = [...rtts.keys()].sort((a, b) => a - b).map((seq) => rtts.get(seq));
      resolve(probeFigures(inOrder, sent));
    };
    channel.onmessage = (event) => {
      let probe;
      try {
        probe = JSON.parse(event.data);
      } catch {
        return;
      }
      const rtt = performance.now() - probe.t;
      const known = Number.isInteger(probe.seq) && probe.seq < sent && !rtts.has(probe.seq);
      if (known && rtt <= PROBE_TIMEOUT_MS) rtts.set(probe.seq, rtt);
      if (sent === PROBES && rtts.size === PROBES) finish();
    };
    const ticker = setInterval(() => {
      if (sent === PROBES || channel.readyState !== "open") {
        clearInterval(ticker);
        finishTimer = setTimeout(finish, PROBE_TIMEOUT_MS);
        return;
      }
      channel.send(JSON.stringify({ seq: sent, t: performance.now() }));
      sent += 1;
    }, PROBE_INTERVAL_MS);
  });
}

function nextMessage(channel, ms) {
  return new Promise((resolve, reject) => {
    const onMessage = (event) => {
      clearTimeout(timer);
      channel.removeEventListener("message", onMessage);
      resolve(event.data);
    };
    const timer = setTimeout(() => {
      channel.removeEventListener("message", onMessage);
      reject(new TestFailure("timeout"));
    }, ms);
    channel.addEventListener("message", onMessage);
  });
}

function drained(channel, ms) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      channel.removeEventListener("bufferedamountlow", done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    channel.addEventListener("bufferedamountlow", done);
  });
}

// Send as fast as the channel's buffer allows for UPLOAD_MS; the server says how much
// arrived between its first and its last chunk.
async function measureUpload(channel) {
  const chunk = new ArrayBuffer(CHUNK_BYTES);
  channel.bufferedAmountLowThreshold = UPLOAD_AHEAD_BYTES / 2;
  const started = performance.now();
  const end = started + UPLOAD_MS;
  let sentBytes = 0;
  while (performance.now() < end && channel.readyState === "open") {
    if (channel.bufferedAmount >= UPLOAD_AHEAD_BYTES) {
      await drained(channel, end - performance.now());
      continue;
    }
    channel.send(chunk);
    sentBytes += CHUNK_BYTES;
  }
  if (channel.readyState !== "open") throw new TestFailure("interrupted");
  const stillQueued = channel.bufferedAmount;
  const elapsedSeconds = (performance.now() - started) / 1000;
  const reply = nextMessage(channel, REPLY_TIMEOUT_MS);
  channel.send("done");
  try {
    const { bytes, seconds } = JSON.parse(await reply);
    // The time runs from the first chunk's arrival: that chunk is not part of it.
    if (seconds > 0) return ((bytes - Math.min(bytes, CHUNK_BYTES)) * 8) / seconds / 1e6;
  } catch (error) {
    if (channel.readyState !== "open") throw new TestFailure("interrupted");
    console.warn("connection test: no upload figure from the server", error);
  }
  // No answer in time (a very slow link): what left this browser, over the time it took.
  return ((sentBytes - stillQueued) * 8) / elapsedSeconds / 1e6;
}

// The server streams for two seconds and then says "done"; a slow link gets
// DOWNLOAD_TIMEOUT_MS, measured on what arrived by then.
function measureDownload(channel) {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    let firstBytes = 0;
    let first = null;
    let last = null;
    const finish = () => {
      clearTimeout(timer);
      channel.onmessage = null;
      channel.onclose = null;
      const seconds = first === null ? 0 : (last - first) / 1000;
      resolve(seconds > 0 ? ((bytes - firstBytes) * 8) / seconds / 1e6 : 0);
    };
    const timer = setTimeout(finish, DOWNLOAD_TIMEOUT_MS);
    channel.onmessage = (event) => {
      if (typeof event.data === "string") {
        if (event.data === "done") finish();
        return;
      }
      const now = performance.now();
      if (first === null) {
        first = now;
        firstBytes = event.data.byteLength;
      }
      last = now;
      bytes += event.data.byteLength;
    };
    channel.onclose = () => {
      clearTimeout(timer);
      reject(new TestFailure("interrupted"));
    };
    channel.send("start");
  });
}

function verdictOf(result) {
  const slowest = Math.min(result.uploadMbps, result.downloadMbps);
  const meets = (limit) =>
    result.rttMs !== null &&
    result.rttMs < limit.rttMs &&
    result.lossPercent < limit.lossPercent &&
    slowest >= limit.mbps;
  if (meets(THRESHOLDS.good)) return "good";
  if (meets(THRESHOLDS.stutter)) return "stutter";
  return "audio";
}

const fill = (template, value) => template.replace("%(value)s", numbers.format(value));

function show(result) {
  const ms = (value) => (value === null ? t.notMeasured : fill(t.ms, Math.round(value)));
  $("nettest-rtt").textContent = ms(result.rttMs);
  $("nettest-jitter").textContent = ms(result.jitterMs);
  $("nettest-loss").textContent = `${result.lossPercent} %`;
  $("nettest-upload").textContent = fill(t.mbps, result.uploadMbps);
  $("nettest-download").textContent = fill(t.mbps, result.downloadMbps);
  verdictLine.textContent = t[result.verdict];
  verdictLine.dataset.level = result.verdict;
  verdictLine.hidden = false;
  results.hidden = false;
}

function failureMessage(error) {
  if (error instanceof TestFailure) {
    if (error.serverMessage) return error.serverMessage; // the server refused: it says why
    if (error.kind === "interrupted") return t.interrupted;
  }
  return t.failed;
}

async function runTest() {
  button.disabled = true;
  verdictLine.hidden = true;
  results.hidden = true;
  statusLine.textContent = t.connecting;
  window.consultaNetTest = { status: "running" };
  const pc = new RTCPeerConnection({
    iceServers: config.iceServers,
    iceTransportPolicy: config.iceTransportPolicy,
  });
  const probe = pc.createDataChannel("probe", { ordered: false, maxRetransmits: 0 });
  const upload = pc.createDataChannel("upload");
  const download = pc.createDataChannel("download");
  for (const channel of [probe, upload, download]) channel.binaryType = "arraybuffer";
  try {
    await withTimeout(connect(pc, [probe, upload, download]), CONNECT_TIMEOUT_MS, "connect");
    statusLine.textContent = t.probing;
    const figures = await measureProbes(probe);
    statusLine.textContent = t.uploading;
    const uploadMbps = await measureUpload(upload);
    statusLine.textContent = t.downloading;
    const downloadMbps = await measureDownload(download);
    const result = { ...figures, uploadMbps, downloadMbps };
    result.verdict = verdictOf(result);
    show(result);
    // The verdict goes into the live region too, so that screen readers announce it.
    statusLine.textContent = `${t.finished} ${t[result.verdict]}`;
    window.consultaNetTest = { status: "done", ...result };
  } catch (error) {
    console.warn("connection test failed", error);
    statusLine.textContent = failureMessage(error);
    window.consultaNetTest = {
      status: "failed",
      error: error instanceof TestFailure ? error.kind : String(error),
    };
  } finally {
    pc.close();
    button.disabled = false;
  }
}

if (window.RTCPeerConnection) {
  button.addEventListener("click", runTest);
} else {
  button.disabled = true;
  statusLine.textContent = t.noWebRTC;
}
