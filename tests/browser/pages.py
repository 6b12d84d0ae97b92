"""Driving Consulta's pages in Chromium as the doctor and the patient do."""

import re
import time
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, Playwright, expect

CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Headless tabs of one browser count as background: keep their timers and media going.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--autoplay-policy=no-user-gesture-required",
]

# Highest framesDecoded of the inbound video on the page's peer connection.
FRAMES_DECODED_JS = """async () => {
  const pc = window.consulta && window.consulta.pc;
  if (!pc) return 0;
  let frames = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") {
      frames = Math.max(frames, r.framesDecoded || 0);
    }
  });
  return frames;
}"""

AUDIO_PACKETS_JS = """async () => {
  const pc = window.consulta && window.consulta.pc;
  if (!pc) return 0;
  let packets = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") packets += r.packetsReceived || 0;
  });
  return packets;
}"""


# Scale factor of the outgoing video (the page starts calls at half size, then full size).
VIDEO_SCALE_JS = """() => {
  const pc = window.consulta && window.consulta.pc;
  const sender = pc && pc.getSenders().find((s) => s.track && s.track.kind === "video");
  const encodings = sender ? sender.getParameters().encodings : [];
  return encodings.length ? (encodings[0].scaleResolutionDownBy || 1) : null;
}"""


def wait_for_value(page: Page, script: str, expected, timeout: float = 10):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = page.evaluate(script)
        if value == expected:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{script!r} stayed {value!r}, expected {expected!r}")


def launch_chromium(playwright: Playwright, executable: str) -> Browser:
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)


def sign_in_with_link(page: Page, base_url: str, link: str) -> None:
    """Open a printed sign-in link on the given server (links name the first server)."""
    page.goto(base_url + urlsplit(link).path)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state()


def wait_for_frames(page: Page, minimum: int = 1, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    frames = 0
    while time.monotonic() < deadline:
        frames = page.evaluate(FRAMES_DECODED_JS)
        if frames >= minimum:
            return frames
        time.sleep(0.1)
    raise AssertionError(f"only {frames} video frames decoded after {timeout}s")


def patient_opens_waiting_room(page: Page, visit_id: str) -> None:
    page.goto(f"{base_of(page)}/my/")
    page.locator(f'li[data-visit-id="{visit_id}"]').get_by_role(
        "link", name="Open the waiting room"
    ).click()
    ready = page.get_by_role("button", name="I'm ready")
    expect(ready).to_be_enabled()
    ready.click()
    expect(page.locator("#call-status")).to_contain_text("Please wait to be let in")


def doctor_admits_from_dashboard(page: Page, visit_id: str, patient_name: str) -> None:
    waiting = page.locator("#waiting-now")
    # Live: the dashboard was loaded before the patient got ready; no reload happens here.
    row = waiting.locator(f'li[data-visit-id="{visit_id}"]')
    expect(row).to_contain_text(patient_name, timeout=15_000)
    # The alert: the panel stands out and the title counts who is waiting.
    expect(waiting).to_have_class(re.compile(r"\balert\b"))
    expect(page).to_have_title(re.compile(r"^\(\d+\) "))
    row.get_by_role("link", name="Enter room").click()
    admit = page.get_by_role("button", name="Admit")
    expect(admit).to_be_enabled()
    admit.click()


def doctor_ends_visit(page: Page) -> None:
    """End the call for both (a doctor admits one patient at a time: leave none open)."""
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="End visit").click()
    expect(page.locator("#call-status")).to_have_text(
        "The visit has ended. You can close this page."
    )


def base_of(page: Page) -> str:
    parts = urlsplit(page.url)
    return f"{parts.scheme}://{parts.netloc}"


# The page's current peer connection, numbered the first time it is seen (a re-offer
# replaces it, and a new connection counts its frames from 0), and its decoded video frames.
PC_FRAMES_JS = """async () => {
  const pc = window.consulta && window.consulta.pc;
  if (!pc) return [null, 0];
  if (!pc.__framesId) pc.__framesId = window.__framesIds = (window.__framesIds || 0) + 1;
  let frames = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") {
      frames = Math.max(frames, r.framesDecoded || 0);
    }
  });
  return [pc.__framesId, frames];
}"""


def wait_for_more_frames(page: Page, since: list, more: int = 10, timeout: float = 15) -> list:
    """Wait until the page has decoded `more` video frames after `since` (a PC_FRAMES_JS
    result): on that same connection, or on a connection that replaced it."""
    deadline = time.monotonic() + timeout
    now = since
    while time.monotonic() < deadline:
        now = page.evaluate(PC_FRAMES_JS)
        baseline = since[1] if now[0] == since[0] else 0
        if now[0] is not None and now[1] - baseline >= more:
            return now
        time.sleep(0.1)
    raise AssertionError(f"no {more} new video frames in {timeout}s: {since} then {now}")
