// One WebRTC connection to one other participant of a call: the offer and the answer, the
// ICE candidates that arrive early, the ICE restart after a network change, and sending
// half-size video until the connection is up. A call page keeps one PeerLink per other
// participant (docs/signalling.md, "Who makes the offer").

// The encoder starts at a low bitrate and drops full-size frames until it has ramped up, so
// the first picture of an HD camera comes late. Send half size first, full size once the
// connection is up: the other side sees us sooner, and in HD seconds later.
const FULL_SIZE_AFTER_MS = 1500;
// How long the media path may stay "disconnected" before the offerer restarts ICE.
const ICE_GRACE_MS = 2000;
// Media from the other side stopping for this long reads as a lost connection, at once:
// ICE itself only says "disconnected" after about five seconds of silence.
const STALL_MS = 2000;
const STALL_CHECK_MS = 1000;

export class PeerLink {
  // peerId: the other participant's `peer`; offerer: whether we make the offers on this
  // link; send(message): sends a signalling message addressed to that participant;
  // onTrack(stream), onConnected(), onRestart(), onStall(), onResume(): the page's
  // reactions (onStall: no media from them for STALL_MS; onResume: it flows again).
  constructor({ peerId, offerer, iceServers, iceTransportPolicy, getLocal, send, handlers }) {
    this.peerId = peerId;
    this.offerer = offerer;
    this.iceServers = iceServers || [];
    this.iceTransportPolicy = iceTransportPolicy || "all";
    this.getLocal = getLocal;
    this.send = send;
    this.handlers = handlers || {};
    this.pc = null;
    this.pendingIce = [];
    this.closed = false;
  }

  // A new connection (the previous one, if any, is closed): every offer starts afresh.
  _create() {
    this._closePc();
    // One transport for audio and video: half the ICE candidates to gather and relay.
    const pc = new RTCPeerConnection({
      iceServers: this.iceServers,
      iceTransportPolicy: this.iceTransportPolicy,
      bundlePolicy: "max-bundle",
    });
    this.pc = pc;
    const local = this.getLocal();
    if (local) {
      for (const track of local.getTracks()) {
        const sender = pc.addTrack(track, local);
        if (track.kind === "video") this._startSmall(pc, sender);
      }
    } else {
      pc.addTransceiver("audio", { direction: "recvonly" });
      pc.addTransceiver("video", { direction: "recvonly" });
    }
    pc.onicecandidate = (event) => {
      this.send({ type: "ice", candidate: event.candidate ? event.candidate.toJSON() : null });
    };
    pc.ontrack = (event) => {
      const stream = event.streams[0] || new MediaStream([event.track]);
      this.handlers.onTrack?.(stream);
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "connected") this.handlers.onConnected?.();
    };
    this._watchStall(pc);
    // A network change breaks the media path: the offerer negotiates afresh (a new offer
    // gathers new candidates) unless the path comes back by itself.
    pc.oniceconnectionstatechange = () => {
      if (!this.offerer || this.pc !== pc) return;
      const ice = pc.iceConnectionState;
      if (ice === "failed") this.restart(pc);
      // Back after an outage: the video decoder may wait seconds for a key frame; a fresh
      // offer brings one at once.
      if (ice === "connected" && pc.hadOutage) this.restart(pc);
      if (ice === "disconnected") {
        pc.hadOutage = true;
        setTimeout(() => {
          if (this.pc === pc && ["disconnected", "failed"].includes(pc.iceConnectionState)) {
            this.restart(pc);
          }
        }, ICE_GRACE_MS);
      }
    };
    return pc;
  }

  // Every second, how many bytes of media came in; none for STALL_MS after some did is a
  // stall (the network went away), and bytes again end it.
  _watchStall(pc) {
    let last = -1;
    let quietSince = null;
    let stalled = false;
    pc.stallTimer = setInterval(async () => {
      if (this.pc !== pc || pc.connectionState === "closed") return;
      let bytes = 0;
      try {
        (await pc.getStats()).forEach((r) => {
          if (r.type === "inbound-rtp") bytes += r.bytesReceived || 0;
        });
      } catch {
        return;
      }
      const now = Date.now();
      if (bytes > last) {
        if (stalled) {
          this.handlers.onResume?.();
          // Back by itself, maybe before ICE even noticed: the video decoder may wait
          // seconds for a key frame; a fresh offer brings one at once.
          if (this.offerer) this.restart(pc);
        }
        stalled = false;
        quietSince = null;
      } else if (last > 0) {
        quietSince = quietSince ?? now;
        if (!stalled && now - quietSince >= STALL_MS) {
          stalled = true;
          this.handlers.onStall?.();
        }
      }
      last = bytes;
    }, STALL_CHECK_MS);
  }

  async _setScale(sender, factor) {
    const parameters = sender.getParameters();
    if (!parameters.encodings || parameters.encodings.length === 0) return;
    parameters.encodings[0].scaleResolutionDownBy = factor;
    try {
      await sender.setParameters(parameters);
    } catch (error) {
      console.warn("could not change the video size", error);
    }
  }

  _startSmall(pc, sender) {
    this._setScale(sender, 2);
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState !== "connected") return;
      setTimeout(() => {
        if (this.pc === pc) this._setScale(sender, 1);
      }, FULL_SIZE_AFTER_MS);
    });
  }

  restart(pc) {
    if (this.closed || (pc && this.pc !== pc)) return;
    if (this.handlers.canRestart && !this.handlers.canRestart()) return;
    this.handlers.onRestart?.();
    this.offer().catch((error) => console.error(error));
  }

  async offer() {
    const pc = this._create();
    await pc.setLocalDescription(await pc.createOffer());
    this.send({ type: "offer", sdp: pc.localDescription.sdp });
  }

  async onOffer(sdp) {
    const pc = this._create();
    await pc.setRemoteDescription({ type: "offer", sdp });
    await this._flushIce(pc);
    await pc.setLocalDescription(await pc.createAnswer());
    this.send({ type: "answer", sdp: pc.localDescription.sdp });
  }

  // True when the answer was applied (an answer to an offer we no longer wait for is dropped).
  async onAnswer(sdp) {
    const pc = this.pc;
    if (!pc || pc.signalingState !== "have-local-offer") return false;
    await pc.setRemoteDescription({ type: "answer", sdp });
    await this._flushIce(pc);
    return true;
  }

  async onIce(candidate) {
    const pc = this.pc;
    if (!pc || !pc.remoteDescription) {
      this.pendingIce.push(candidate);
      return;
    }
    await this._addIce(pc, candidate);
  }

  async _flushIce(pc) {
    const pending = this.pendingIce;
    this.pendingIce = [];
    for (const candidate of pending) await this._addIce(pc, candidate);
  }

  async _addIce(pc, candidate) {
    try {
      await pc.addIceCandidate(candidate || undefined);
    } catch (error) {
      console.warn("ICE candidate refused", error);
    }
  }

  // The sender of this kind of track, for replaceTrack() (device change, screen sharing).
  sender(kind) {
    return this.pc?.getSenders().find((s) => s.track && s.track.kind === kind) || null;
  }

  _closePc() {
    if (this.pc) {
      clearInterval(this.pc.stallTimer);
      this.pc.onicecandidate = null;
      this.pc.ontrack = null;
      this.pc.oniceconnectionstatechange = null;
      this.pc.close();
    }
    this.pc = null;
    this.pendingIce = [];
  }

  // Hang up on this participant; the link may offer or answer again later.
  hangUp() {
    this._closePc();
  }

  close() {
    this.closed = true;
    this._closePc();
  }
}

// Round-trip time and lost packets of a connection, in three words: good, fair or poor.
export async function connectionQuality(pc) {
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
  if (rtt > 0.5 || lossShare > 0.1) return "poor";
  if (rtt > 0.25 || lossShare > 0.03) return "fair";
  return "good";
}
