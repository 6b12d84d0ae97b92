"""Call set-up time: from the doctor's "Admit" click to the first decoded remote video frame,
on each side, against a real deployment (PostgreSQL + Redis, one process, CONSULTA_ENV=demo)
and two real Chromium pages; compared with a floor measured in the same browser: two peer
connections in one page, signalling by direct assignment, createOffer to first decoded frame.

    uv run python bench/call_setup.py [--calls N] [--json-out PATH]

Progress goes to stderr; the last line on stdout is one JSON object (see bench/README.md).
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from bench.common import emit, log, percentile, rounded  # noqa: E402
from tests.browser.pages import launch_chromium, sign_in_with_link  # noqa: E402
from tests.browser.server import running_deployment, server_logs  # noqa: E402
from tests.services import CHROMIUM, POSTGRES_URL, REDIS_URL  # noqa: E402

FRAME_TIMEOUT_MS = 20_000
POLL_MS = 5

# Installed in every page before its own scripts. `__benchFirstFrame(getPc, timeoutMs)`
# resolves with Date.now() at the first poll that sees framesDecoded >= 1 on an inbound video
# report of getPc()'s peer connection, or null after timeoutMs. getPc() is asked afresh on
# every poll: the page's connection may not exist yet, or may be replaced (new offer).
# setTimeout, not requestAnimationFrame: headless pages of one browser count as background.
BENCH_INIT_JS = f"""
window.__benchFirstFrame = (getPc, timeoutMs) => new Promise((resolve) => {{
  const deadline = Date.now() + timeoutMs;
  const poll = async () => {{
    let frames = 0;
    const pc = getPc();
    if (pc && pc.connectionState !== "closed") {{
      try {{
        (await pc.getStats()).forEach((r) => {{
          if (r.type === "inbound-rtp" && r.kind === "video") {{
            frames = Math.max(frames, r.framesDecoded || 0);
          }}
        }});
      }} catch (error) {{
        // Closed or replaced while we asked: try again on the next poll.
      }}
    }}
    const now = Date.now();
    if (frames >= 1) resolve(now);
    else if (now > deadline) resolve(null);
    else setTimeout(poll, {POLL_MS});
  }};
  poll();
}});
"""

# In a visit page: start watching for the first frame; the promise is read back later.
START_WATCH_JS = """(timeoutMs) => {
  window.__benchFrame = window.__benchFirstFrame(
    () => window.consulta && window.consulta.pc, timeoutMs);
}"""

# In the doctor's page: the timestamp right before the click, the click itself in the page.
CLICK_ADMIT_JS = """() => {
  const button = document.getElementById("admit-button");
  if (button.disabled) throw new Error("Admit is disabled");
  const t0 = Date.now();
  button.click();
  return t0;
}"""

# The patient page has seen the doctor arrive (the patient's server-side consumer sends its
# "here" to the doctor at the same moment, so the doctor knows the patient is present).
PATIENT_SEES_DOCTOR_JS = """() => {
  const strings = JSON.parse(document.getElementById("visit-strings").textContent);
  return document.getElementById("call-status").textContent.includes(strings.doctorPresent);
}"""

# The floor: one page, two peer connections, descriptions and candidates handed over directly.
FLOOR_JS = """async (timeoutMs) => {
  if (!window.__benchLocal) {
    window.__benchLocal = await navigator.mediaDevices.getUserMedia({video: true, audio: true});
  }
  const local = window.__benchLocal;
  const sender = new RTCPeerConnection();
  const receiver = new RTCPeerConnection();
  // A candidate may arrive before the other side has its remote description: hold it.
  const wire = (from, to) => {
    const held = [];
    from.onicecandidate = (event) => {
      const candidate = event.candidate;
      if (to.remoteDescription) to.addIceCandidate(candidate || undefined).catch(() => {});
      else held.push(candidate);
    };
    return async () => {
      for (const c of held.splice(0)) await to.addIceCandidate(c || undefined).catch(() => {});
    };
  };
  const flushToReceiver = wire(sender, receiver);
  const flushToSender = wire(receiver, sender);
  for (const track of local.getTracks()) sender.addTrack(track, local);
  const watch = window.__benchFirstFrame(() => receiver, timeoutMs);
  const t0 = Date.now();
  const offer = await sender.createOffer();
  await sender.setLocalDescription(offer);
  await receiver.setRemoteDescription(offer);
  await flushToReceiver();
  const answer = await receiver.createAnswer();
  await receiver.setLocalDescription(answer);
  await sender.setRemoteDescription(answer);
  await flushToSender();
  const t1 = await watch;
  sender.close();
  receiver.close();
  return t1 === null ? null : t1 - t0;
}"""


def wait_status(page: Page, status: str, timeout_ms: float = 15_000) -> None:
    page.wait_for_function(
        "(s) => window.consulta && window.consulta.status === s", arg=status, timeout=timeout_ms
    )


def one_call(base: str, doctor: Page, patient: Page, visit_id: str) -> tuple[int | None, ...]:
    """Patient gets ready, doctor admits; returns (patient_ms, doctor_ms), None if no frame."""
    patient.goto(f"{base}/visits/{visit_id}/")
    ready = patient.locator("#ready-button")
    expect(ready).to_be_enabled(timeout=15_000)
    ready.click()
    wait_status(patient, "waiting")

    doctor.goto(f"{base}/visits/{visit_id}/")
    expect(doctor.locator("#admit-button")).to_be_enabled(timeout=15_000)
    patient.wait_for_function(PATIENT_SEES_DOCTOR_JS, timeout=15_000)
    time.sleep(0.2)  # let the doctor's page take in the patient's presence, as a human would

    patient.evaluate(START_WATCH_JS, FRAME_TIMEOUT_MS)
    doctor.evaluate(START_WATCH_JS, FRAME_TIMEOUT_MS)
    t0 = doctor.evaluate(CLICK_ADMIT_JS)
    patient_t = patient.evaluate("() => window.__benchFrame")
    doctor_t = doctor.evaluate("() => window.__benchFrame")
    try:
        doctor.locator("#end-button").click()  # the page's dialog handler accepts confirm()
        wait_status(doctor, "ended")
        wait_status(patient, "ended")
    except Exception as error:  # a visit that would not end does not stop the benchmark
        log(f"  visit {visit_id}: did not end cleanly: {error}")
    return (
        None if patient_t is None else patient_t - t0,
        None if doctor_t is None else doctor_t - t0,
    )


def measure_calls(browser, base: str, seed: dict, calls: int) -> tuple[list[float], int]:
    samples: list[float] = []
    failures = 0
    contexts = []
    try:
        pages = {}
        for role in ("doctor", "patient"):
            context = browser.new_context()
            contexts.append(context)
            context.add_init_script(BENCH_INIT_JS)
            page = context.new_page()
            page.on("dialog", lambda dialog: dialog.accept())
            sign_in_with_link(page, base, seed["links"][role])
            pages[role] = page
        log("signed in as the doctor and the patient")
        for i, visit_id in enumerate(seed["visit_ids"][:calls], start=1):
            try:
                patient_ms, doctor_ms = one_call(base, pages["doctor"], pages["patient"], visit_id)
            except Exception as error:
                failures += 1
                log(f"call {i}/{calls}: FAILED ({type(error).__name__}: {error})")
                continue
            if patient_ms is None or doctor_ms is None:
                failures += 1
                log(
                    f"call {i}/{calls}: FAILED, no decoded frame within {FRAME_TIMEOUT_MS} ms "
                    f"(patient {patient_ms}, doctor {doctor_ms})"
                )
                continue
            samples += [patient_ms, doctor_ms]
            log(f"call {i}/{calls}: patient {patient_ms} ms, doctor {doctor_ms} ms")
    finally:
        for context in contexts:
            context.close()
    return samples, failures


def measure_floor(browser, base: str, runs: int) -> list[float]:
    context = browser.new_context()
    context.add_init_script(BENCH_INIT_JS)
    samples = []
    try:
        page = context.new_page()
        page.goto(f"{base}/healthz")  # http://127.0.0.1 is a secure context: getUserMedia works
        for i in range(1, runs + 1):
            elapsed = page.evaluate(FLOOR_JS, FRAME_TIMEOUT_MS)
            if elapsed is None:
                log(f"floor {i}/{runs}: no decoded frame within {FRAME_TIMEOUT_MS} ms")
                continue
            samples.append(elapsed)
            log(f"floor {i}/{runs}: {elapsed} ms")
    finally:
        context.close()
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30, help="calls to set up (default 30)")
    parser.add_argument("--json-out", type=Path, help="also write the JSON line to this file")
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error("--calls must be at least 1")

    with running_deployment(
        "bench", processes=1, postgres_url=POSTGRES_URL, redis_url=REDIS_URL, consulta_env="demo"
    ) as deployment:
        base = deployment.urls[0]
        log(f"deployment up at {base}; seeding {args.calls} visits")
        seed = deployment.seed_visits(args.calls)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright, CHROMIUM)
            try:
                try:
                    samples, failures = measure_calls(browser, base, seed, args.calls)
                except Exception:
                    log(server_logs(deployment))
                    raise
                floor = measure_floor(browser, base, args.calls)
            finally:
                browser.close()

    p50, p95 = percentile(samples, 50), percentile(samples, 95)
    floor_p50, floor_p95 = percentile(floor, 50), percentile(floor, 95)
    ratio = round(p95 / floor_p95, 2) if p95 is not None and floor_p95 else None
    result = {
        "bench": "call_setup",
        "n": args.calls,
        "failures": failures,
        "p50_ms": rounded(p50),
        "p95_ms": rounded(p95),
        "floor_p50_ms": rounded(floor_p50),
        "floor_p95_ms": rounded(floor_p95),
        "ratio_p95": ratio,
    }
    emit(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
