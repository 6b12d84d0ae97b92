"""Reconnection after a network cut: in each of N video visits forced through a TURN relay
(coturn on loopback, ICE_TRANSPORT_POLICY=relay), the patient goes offline for a few seconds
(every datagram between the patient's browser and the relay is dropped, and the patient's
browser context is offline); the time from the network's return until video flows again,
both ways, against a real deployment (PostgreSQL + Redis, one process, CONSULTA_ENV=demo).

    uv run python bench/reconnect.py [--calls N] [--offline-seconds S] [--json-out PATH]
                                     [--redis-url URL] [--trace]

Progress goes to stderr; the last line on stdout is one JSON object (see bench/README.md).
Target: every call recovers, p95_recovery_ms <= 4000.
"""

import argparse
import json
import multiprocessing
import secrets
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from playwright.sync_api import BrowserContext, Page, expect, sync_playwright  # noqa: E402

from bench.common import emit, log, percentile, rounded  # noqa: E402
from tests.browser.pages import launch_chromium, sign_in_with_link  # noqa: E402
from tests.browser.server import free_port, running_deployment, server_logs  # noqa: E402
from tests.services import CHROMIUM, POSTGRES_URL, REDIS_URL  # noqa: E402

RECOVERY_TIMEOUT_MS = 30_000
FLOWING_FRAMES = 10  # new decoded frames on one peer connection: video flows again
POLL_MS = 20
TARGET_P95_MS = 4000

# Installed in every page before its own scripts: a record of what the page's WebSocket and
# peer connections do, with Date.now() (one clock for both pages and this process). Wrapping
# the constructors adds listeners and changes nothing else; ICE candidates, media states and
# pings are left out of the record.
BENCH_INIT_JS = """
(() => {
  const events = [];
  window.__benchEvents = events;
  const note = (what) => events.push([Date.now(), what]);
  const describe = (data) => {
    try {
      const m = JSON.parse(data);
      if (["ice", "media", "ping", "pong"].includes(m.type)) return null;
      if (m.type === "presence") return `presence ${m.role} ${m.state}`;
      if (m.type === "hello" || m.type === "state") return `${m.type} ${m.status}`;
      return m.type;
    } catch (error) {
      return null;
    }
  };
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      note("ws connecting");
      this.addEventListener("open", () => note("ws open"));
      this.addEventListener("close", (e) => note(`ws close ${e.code}`));
      this.addEventListener("message", (e) => {
        const what = describe(e.data);
        if (what) note(`recv ${what}`);
      });
    }
    send(data) {
      const what = describe(data);
      if (what) note(`send ${what}${this.readyState === 1 ? "" : " (socket not open)"}`);
      return super.send(data);
    }
  };
  const NativePeerConnection = window.RTCPeerConnection;
  if (!NativePeerConnection) return;
  // The patient reaches the TURN server through the bench's link (see link_process).
  const rewrite = (config) => {
    const route = window.__benchTurnRoute;
    if (!route || !config || !config.iceServers) return config;
    const via = (url) => url.replace(route[0], route[1]);
    const iceServers = config.iceServers.map((server) => ({
      ...server,
      urls: Array.isArray(server.urls) ? server.urls.map(via) : via(server.urls),
    }));
    return {...config, iceServers};
  };
  let count = 0;
  window.RTCPeerConnection = class extends NativePeerConnection {
    constructor(config, ...rest) {
      super(rewrite(config), ...rest);
      const id = ++count;
      this.__benchId = id;
      note(`pc${id} created`);
      this.addEventListener("iceconnectionstatechange", () =>
        note(`pc${id} ice ${this.iceConnectionState}`));
      this.addEventListener("connectionstatechange", () =>
        note(`pc${id} connection ${this.connectionState}`));
      const close = this.close.bind(this);
      this.close = () => {
        note(`pc${id} closed`);
        close();
      };
    }
  };
})();
"""

# Which peer connection the page has, and the highest framesDecoded of its inbound video.
FRAMES_JS = """async () => {
  const pc = window.consulta && window.consulta.pc;
  if (!pc) return [null, 0];
  let frames = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") {
      frames = Math.max(frames, r.framesDecoded || 0);
    }
  });
  return [pc.__benchId, frames];
}"""

# Started while the network is still cut. Polls the page's current peer connection (it may
# be replaced by a re-offer) and resolves once one connection has decoded FLOWING_FRAMES
# frames more than it had when the watch started (a connection created after that: more
# than 0), with the time of that connection's first new frame and the time of the last one
# counted; or with null after timeoutMs. setTimeout, not requestAnimationFrame: headless
# pages of one browser count as background.
START_WATCH_JS = f"""(timeoutMs) => {{
  const baselines = new Map();
  const firstNew = new Map();
  const startPc = window.consulta && window.consulta.pc;
  const deadline = Date.now() + timeoutMs;
  window.__benchRecovery = new Promise((resolve) => {{
    const poll = async () => {{
      const pc = window.consulta && window.consulta.pc;
      let frames = null;
      if (pc && pc.connectionState !== "closed") {{
        try {{
          frames = 0;
          (await pc.getStats()).forEach((r) => {{
            if (r.type === "inbound-rtp" && r.kind === "video") {{
              frames = Math.max(frames, r.framesDecoded || 0);
            }}
          }});
        }} catch (error) {{
          frames = null;  // closed or replaced while we asked: try again
        }}
      }}
      const now = Date.now();
      if (frames !== null) {{
        if (!baselines.has(pc)) baselines.set(pc, pc === startPc ? frames : 0);
        const grown = frames - baselines.get(pc);
        if (grown >= 1 && !firstNew.has(pc)) {{
          firstNew.set(pc, now);
          window.__benchEvents.push([now, `pc${{pc.__benchId}} first new video frame`]);
        }}
        if (grown >= {FLOWING_FRAMES}) {{
          window.__benchEvents.push([now, `pc${{pc.__benchId}} {FLOWING_FRAMES} new video frames`]);
          resolve({{first: firstNew.get(pc), flowing: now, pc: pc.__benchId}});
          return;
        }}
      }}
      if (now > deadline) resolve(null);
      else setTimeout(poll, {POLL_MS});
    }};
    poll();
  }});
}}"""

STATUS_JS = "() => window.consulta && window.consulta.status"

# The patient page has seen the doctor arrive (as in bench/call_setup.py).
PATIENT_SEES_DOCTOR_JS = """() => {
  const strings = JSON.parse(document.getElementById("visit-strings").textContent);
  return document.getElementById("call-status").textContent.includes(strings.doctorPresent);
}"""

# ICE states and the selected pair of the page's current connection, for the record.
ICE_JS = """async () => {
  const pc = window.consulta && window.consulta.pc;
  if (!pc) return null;
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((r) => {
    if (r.type === "transport" && r.selectedCandidatePairId) {
      pair = stats.get(r.selectedCandidatePairId);
    }
  });
  const type = (id) => (stats.get(id) || {}).candidateType;
  return {pc: pc.__benchId, ice: pc.iceConnectionState, connection: pc.connectionState,
          pair: pair ? [type(pair.localCandidateId), type(pair.remoteCandidateId)] : null};
}"""


def wait_until(page: Page, script: str, arg=None, timeout: float = 15) -> None:
    """Poll a function string with page.evaluate (the pages' CSP forbids eval)."""
    deadline = time.monotonic() + timeout
    while True:
        if page.evaluate(script, arg):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{script!r} stayed false for {timeout}s")
        time.sleep(0.05)


def wait_status(page: Page, status: str, timeout: float = 15) -> None:
    wait_until(page, "(s) => window.consulta && window.consulta.status === s", status, timeout)


def wait_frames(page: Page, minimum: int, timeout: float = 20) -> None:
    wait_until(
        page,
        f"async () => (await ({FRAMES_JS})())[1] >= {minimum}",
        timeout=timeout,
    )


@contextmanager
def running_coturn(log_dir: Path):
    """coturn on loopback with use-auth-secret, as tests/browser/test_turn.py starts it."""
    executable = shutil.which("turnserver") or "/usr/bin/turnserver"
    port, secret = free_port(), secrets.token_urlsafe(24)
    log_file = log_dir / "turnserver.log"
    process = subprocess.Popen(  # noqa: S603
        [
            executable,
            "--listening-ip=127.0.0.1",
            f"--listening-port={port}",
            "--relay-ip=127.0.0.1",
            "--min-port=49500",
            "--max-port=49700",
            "--use-auth-secret",
            f"--static-auth-secret={secret}",
            "--realm=consulta.test",
            "--allow-loopback-peers",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--no-stdout-log",
            f"--log-file={log_file}",
            "--simple-log",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(0.5)
        if process.poll() is not None:
            raise RuntimeError(f"turnserver exited with {process.returncode}")
        yield {"port": port, "secret": secret, "log": log_file}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def link_process(upstream_port: int, up, ports) -> None:
    """The patient's network: a UDP forwarder between the patient's browser and coturn. Each
    address that writes to it gets its own socket towards coturn, so coturn sees one client
    per flow. While `up.value` is 0 every datagram, either way, is read and thrown away:
    nothing waits in a buffer to be delivered late, as it would behind a stopped process."""
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(("127.0.0.1", 0))
    front.setblocking(False)
    ports.send(front.getsockname()[1])
    selector = selectors.DefaultSelector()
    selector.register(front, selectors.EVENT_READ, None)
    flows: dict = {}
    while True:
        for key, _ in selector.select():
            sock, client = key.fileobj, key.data
            while True:
                try:
                    data, address = sock.recvfrom(65536)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                if not up.value:
                    continue
                try:
                    if client is not None:
                        front.sendto(data, client)
                        continue
                    towards = flows.get(address)
                    if towards is None:
                        towards = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        towards.connect(("127.0.0.1", upstream_port))
                        towards.setblocking(False)
                        selector.register(towards, selectors.EVENT_READ, address)
                        flows[address] = towards
                    towards.send(data)
                except OSError:
                    pass  # a full buffer drops the datagram, as a network would


@contextmanager
def running_link(upstream_port: int):
    """Start link_process; yields (its port, the shared switch: 1 up, 0 cut)."""
    context = multiprocessing.get_context("spawn")
    up = context.RawValue("b", 1)
    receiving, sending = context.Pipe(duplex=False)
    process = context.Process(target=link_process, args=(upstream_port, up, sending), daemon=True)
    process.start()
    try:
        if not receiving.poll(30):
            raise RuntimeError("the link did not start")
        yield receiving.recv(), up
    finally:
        process.terminate()
        process.join(timeout=10)


def timeline(events: dict[str, list], t_cut: float, t0: float, until: float) -> str:
    """The two pages' records from the cut on, in one list, times relative to the return."""
    rows = []
    for role, page_events in events.items():
        for at, what in page_events:
            if t_cut - 50 <= at <= until:
                rows.append((at, role, what))
    rows.sort()
    return "\n".join(f"    {(at - t0) / 1000:+7.3f}s {role:<7} {what}" for at, role, what in rows)


def admit(doctor: Page, patient: Page, base: str, visit_id: str) -> None:
    """Patient ready, doctor admits, video decoded on both sides."""
    patient.goto(f"{base}/visits/{visit_id}/")
    ready = patient.locator("#ready-button")
    expect(ready).to_be_enabled(timeout=15_000)
    ready.click()
    wait_status(patient, "waiting")
    doctor.goto(f"{base}/visits/{visit_id}/")
    expect(doctor.locator("#admit-button")).to_be_enabled(timeout=15_000)
    wait_until(patient, PATIENT_SEES_DOCTOR_JS)
    time.sleep(0.2)  # let the doctor's page take in the patient's presence, as a human would
    doctor.locator("#admit-button").click()
    wait_frames(patient, FLOWING_FRAMES)
    wait_frames(doctor, FLOWING_FRAMES)


def one_call(
    pages: dict[str, Page],
    patient_context: BrowserContext,
    link_up,
    offline_s: float,
    base: str,
    visit_id: str,
) -> dict:
    """One visit with one cut; returns what happened (recovery_ms is None if it did not)."""
    doctor, patient = pages["doctor"], pages["patient"]
    admit(doctor, patient, base, visit_id)
    for page in pages.values():
        page.evaluate("() => { window.__benchEvents.length = 0; }")
    before = {role: page.evaluate(ICE_JS) for role, page in pages.items()}

    # The cut: the patient's datagrams to and from the relay are dropped, and the patient's
    # browser context goes offline (its WebSocket carries nothing; new ones fail).
    t_cut = time.time() * 1000
    link_up.value = 0
    try:
        patient_context.set_offline(True)
        time.sleep(1.0)  # frames in flight (jitter buffer) are decoded by now
        frozen = {role: page.evaluate(FRAMES_JS) for role, page in pages.items()}
        for page in pages.values():
            page.evaluate(START_WATCH_JS, RECOVERY_TIMEOUT_MS + offline_s * 1000)
        time.sleep(max(0.0, (t_cut + offline_s * 1000) / 1000 - time.time()))
        during = {role: page.evaluate(FRAMES_JS) for role, page in pages.items()}
    finally:
        # The return: both at once (the link first: it is a shared flag).
        t0 = time.time() * 1000
        link_up.value = 1
        patient_context.set_offline(False)
    t_back = time.time() * 1000

    found = {role: page.evaluate("() => window.__benchRecovery") for role, page in pages.items()}
    deadline = t0 + RECOVERY_TIMEOUT_MS
    recovered = all(r and r["first"] <= deadline for r in found.values())
    recovery_ms = max(r["first"] for r in found.values()) - t0 if recovered else None
    flowing_ms = max(r["flowing"] for r in found.values()) - t0 if recovered else None
    after = {role: page.evaluate(ICE_JS) for role, page in pages.items()}
    events = {role: page.evaluate("() => window.__benchEvents") for role, page in pages.items()}
    until = max((r["flowing"] for r in found.values() if r), default=deadline)

    try:
        doctor.locator("#end-button").click()  # the dialog handler accepts confirm()
        wait_status(doctor, "ended")
        wait_status(patient, "ended")
    except Exception as error:  # a visit that would not end does not stop the benchmark
        log(f"  visit {visit_id}: did not end cleanly: {error}")
    return {
        "recovery_ms": recovery_ms,
        "flowing_ms": flowing_ms,
        "restore_ms": t_back - t0,
        "found": found,
        "t0": t0,
        "before": before,
        "after": after,
        "frames_during_cut": {
            role: during[role][1] - frozen[role][1] if during[role][0] == frozen[role][0] else None
            for role in pages
        },
        "timeline": timeline(events, t_cut, t0, until),
        "socket_drops": {
            role: sum(1 for _, what in page_events if what.startswith("ws close"))
            for role, page_events in events.items()
        },
        "new_pcs": {
            role: sum(1 for _, what in page_events if what.endswith(" created"))
            for role, page_events in events.items()
        },
    }


def describe(result: dict) -> str:
    parts = []
    for role in ("patient", "doctor"):
        r = result["found"][role]
        if r is None:
            parts.append(f"{role} no video")
        else:
            parts.append(
                f"{role} first frame +{r['first'] - result['t0']:.0f} ms "
                f"(10 frames +{r['flowing'] - result['t0']:.0f} ms, pc{r['pc']})"
            )
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="calls (default 20)")
    parser.add_argument(
        "--offline-seconds", type=float, default=5, help="length of each cut (default 5)"
    )
    parser.add_argument("--json-out", type=Path, help="also write the JSON line to this file")
    parser.add_argument(
        "--redis-url",
        default=REDIS_URL,
        help=f"the deployment's Redis (default {REDIS_URL}); query parameters such as "
        "?socket_timeout=10 reach the channel layer's connections",
    )
    parser.add_argument(
        "--trace", action="store_true", help="print every call's timeline, not only slow ones"
    )
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    if args.offline_seconds <= 1:
        parser.error("--offline-seconds must be more than 1")

    samples: list[float] = []
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="consulta-turn-") as turn_dir,
        running_coturn(Path(turn_dir)) as turn,
        running_link(turn["port"]) as (link_port, link_up),
        running_deployment(
            "bench",
            processes=1,
            postgres_url=POSTGRES_URL,
            redis_url=args.redis_url,
            consulta_env="demo",
            extra_env={
                "TURN_URLS": f"turn:127.0.0.1:{turn['port']}?transport=udp",
                "TURN_SECRET": turn["secret"],
                "ICE_TRANSPORT_POLICY": "relay",
            },
        ) as deployment,
    ):
        base = deployment.urls[0]
        log(
            f"deployment up at {base}, coturn on port {turn['port']}, the patient's link on "
            f"port {link_port}; seeding {args.calls} visits"
        )
        seed = deployment.seed_visits(args.calls)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright, CHROMIUM)
            contexts, pages, console = {}, {}, []
            try:
                for role in ("doctor", "patient"):
                    context = browser.new_context()
                    contexts[role] = context
                    if role == "patient":
                        route = [f"127.0.0.1:{turn['port']}", f"127.0.0.1:{link_port}"]
                        context.add_init_script(f"window.__benchTurnRoute = {json.dumps(route)};")
                    context.add_init_script(BENCH_INIT_JS)
                    page = context.new_page()
                    page.on("dialog", lambda dialog: dialog.accept())
                    page.on(
                        "console",
                        lambda message, role=role: console.append(
                            (time.time() * 1000, role, message.type, message.text)
                        ),
                    )
                    sign_in_with_link(page, base, seed["links"][role])
                    pages[role] = page
                log("signed in as the doctor and the patient")
                for i, visit_id in enumerate(seed["visit_ids"][: args.calls], start=1):
                    console.clear()
                    try:
                        result = one_call(
                            pages,
                            contexts["patient"],
                            link_up,
                            args.offline_seconds,
                            base,
                            visit_id,
                        )
                    except Exception as error:
                        log(f"call {i}/{args.calls}: FAILED ({type(error).__name__}: {error})")
                        log(server_logs(deployment)[-4000:])
                        continue
                    ms = result["recovery_ms"]
                    status = "not recovered" if ms is None else f"recovered in {ms:.0f} ms"
                    log(
                        f"call {i}/{args.calls}: {status} ({describe(result)}); "
                        f"frames during the cut {result['frames_during_cut']}; "
                        f"socket drops {result['socket_drops']}; "
                        f"new peer connections {result['new_pcs']}; "
                        f"restore took {result['restore_ms']:.0f} ms"
                    )
                    if ms is not None:
                        samples.append(ms)
                    if args.trace or ms is None or ms > TARGET_P95_MS or i == 1:
                        log(f"  before: {result['before']}; after: {result['after']}")
                        log("  timeline (0 = network back):\n" + result["timeline"])
                        for at, role, kind, text in console:
                            at_s = (at - result["t0"]) / 1000
                            log(f"  console {at_s:+.3f}s {role} {kind}: {text}")
                    if ms is None:
                        log(server_logs(deployment)[-4000:])
            finally:
                for context in contexts.values():
                    context.close()
                browser.close()

    seconds = time.monotonic() - started
    log(f"run took {seconds:.0f} s")
    result = {
        "bench": "reconnect",
        "calls": args.calls,
        "offline_seconds": (
            int(args.offline_seconds)
            if float(args.offline_seconds).is_integer()
            else args.offline_seconds
        ),
        "recovered": len(samples),
        "p50_recovery_ms": rounded(percentile(samples, 50)),
        "p95_recovery_ms": rounded(percentile(samples, 95)),
        "max_recovery_ms": rounded(max(samples) if samples else None),
    }
    emit(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
