"""An independent WebRTC stack joins a video visit: the patient is aiortc, written only from
docs/signalling.md (sign in over HTTP, one WebSocket, JSON messages); the doctor is Chromium
on Consulta's own page. Video frames are decoded on both sides, then the doctor ends it."""

import asyncio
import concurrent.futures
import http.cookiejar
import json
import re
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import av
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack
from aiortc.sdp import candidate_from_sdp
from playwright.sync_api import expect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.browser.pages import doctor_admits_from_dashboard, doctor_ends_visit, sign_in_with_link
from tests.browser.pages import wait_for_frames as wait_for_page_frames
from tests.browser.server import running_deployment, server_logs

pytestmark = pytest.mark.browser

# Server → client types of docs/signalling.md.
DOCUMENTED_TYPES = {
    "hello",
    "state",
    "presence",
    "offer",
    "answer",
    "ice",
    "media",
    "pong",
    "error",
}
FRAMES_WANTED = 10
PATIENT_TIMEOUT = 55  # the whole aiortc patient, from connecting to the socket's close


@pytest.fixture(scope="module")
def embedded():
    with running_deployment("aiortc-client") as deployment:
        yield deployment


# --- Signing in over plain HTTP, as the sign-in link page does in a browser ------------------


def sign_in_over_http(base: str, link: str) -> str:
    """Follow a sign-in link, press its "Continue" form (a POST with the CSRF token) and
    return the `sessionid` cookie."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar)
    )
    url = base + urllib.parse.urlsplit(link).path
    with opener.open(url, timeout=10) as response:
        page = response.read().decode()
    # The link page's own form is the one without an action (it posts back to the link).
    form = re.search(r"<form method=\"post\">(.*?)</form>", page, re.S)
    assert form, f"no sign-in form on {url}"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.group(1))
    assert token, "no CSRF token in the sign-in form"
    request = urllib.request.Request(  # noqa: S310
        url,
        data=urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1)}).encode(),
        headers={"Origin": base, "Referer": url},
        method="POST",
    )
    with opener.open(request, timeout=10) as response:
        response.read()
    session = next((c.value for c in jar if c.name == "sessionid"), None)
    assert session, "signing in over HTTP set no sessionid cookie"
    return session


# --- Media the aiortc patient sends ------------------------------------------------------------


class MovingBarsTrack(VideoStreamTrack):
    """320x240 frames whose brightness sweeps, so that every frame differs."""

    WIDTH, HEIGHT = 320, 240

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(self.WIDTH, self.HEIGHT, "yuv420p")
        luma, chroma = frame.planes[0], frame.planes[1:]
        shift = (self.count * 4) % luma.line_size
        row = bytes((x + shift) % 220 + 16 for x in range(luma.line_size))
        luma.update(row * (luma.buffer_size // luma.line_size))
        for plane, value in zip(chroma, (90, 200), strict=True):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        self.count += 1
        return frame


# --- The aiortc patient, in its own thread and event loop --------------------------------------


@dataclass
class PatientReport:
    types: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    hello: dict | None = None
    offers: int = 0
    remote_media: list[dict] = field(default_factory=list)
    candidates_added: int = 0
    frames: int = 0
    close_code: int | None = None


class AiortcPatient:
    """Speaks docs/signalling.md as the patient. `start()` runs it in a thread with its own
    asyncio loop; the main thread (Playwright's) waits on `frames_decoded` and `result()`."""

    def __init__(self, base: str, visit_id: str, session: str) -> None:
        host = urllib.parse.urlsplit(base).netloc
        self.url = f"ws://{host}/ws/visits/{visit_id}/"
        self.origin = base
        self.session = session
        self.report = PatientReport()
        self.in_call = threading.Event()
        self.frames_decoded = threading.Event()
        self.stop = threading.Event()  # set by the main thread to give up early
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.thread = threading.Thread(target=self._run, name="aiortc-patient", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def result(self, timeout: float) -> PatientReport:
        try:
            return self.future.result(timeout=timeout)
        finally:
            self.stop.set()
            self.thread.join(timeout=10)
            assert not self.thread.is_alive(), "the aiortc patient's thread did not finish"

    def wait_for(self, event: threading.Event, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not event.wait(0.1):
            if self.future.done():
                self.future.result()  # raises the patient's own failure, if any
                raise AssertionError(f"the aiortc patient finished before {what}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the aiortc patient: no {what} after {timeout}s")

    def _run(self) -> None:
        try:
            result = asyncio.run(asyncio.wait_for(self._visit(), PATIENT_TIMEOUT))
        except BaseException as error:  # noqa: BLE001 (handed to the main thread)
            if isinstance(error, TimeoutError):
                timeout = AssertionError(
                    f"the aiortc patient timed out ({PATIENT_TIMEOUT}s in all, 10s to open its"
                    f" socket): {self.report}"
                )
                timeout.__cause__, error = error, timeout
            self.future.set_exception(error)
        else:
            self.future.set_result(result)

    async def _visit(self) -> PatientReport:
        self.pc: RTCPeerConnection | None = None
        self.tasks: set[asyncio.Task] = set()
        try:
            async with connect(
                self.url,
                origin=self.origin,
                additional_headers={"Cookie": f"sessionid={self.session}"},
                proxy=None,
                open_timeout=10,
                close_timeout=5,
            ) as ws:
                watcher = asyncio.create_task(self._watch_stop(ws))
                try:
                    await self._converse(ws)
                finally:
                    watcher.cancel()
                self.report.close_code = ws.close_code
        finally:
            await self._close_peer()
            for task in self.tasks:
                task.cancel()
        return self.report

    async def _watch_stop(self, ws) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(0.1)
        await ws.close()

    async def _converse(self, ws) -> None:
        hello = await self._receive(ws)
        assert hello is not None and hello["type"] == "hello", f"first message: {hello}"
        assert hello["role"] == "patient", hello
        self.report.hello = hello
        await self._send(ws, {"type": "ready"})
        while (message := await self._receive(ws)) is not None:
            await self._handle(ws, message)

    async def _receive(self, ws) -> dict | None:
        try:
            text = await ws.recv()
        except ConnectionClosed:
            return None
        assert isinstance(text, str), "the server sent a binary frame"
        message = json.loads(text)
        assert isinstance(message, dict) and isinstance(message.get("type"), str), text
        self.report.types.append(message["type"])
        return message

    async def _send(self, ws, message: dict) -> None:
        await ws.send(json.dumps(message))

    async def _handle(self, ws, message: dict) -> None:
        kind = message["type"]
        if kind == "state":
            self.report.statuses.append(message["status"])
            if message["status"] == "in_call":
                self.in_call.set()
            elif message["status"] == "ended":
                await self._close_peer()  # the server closes the socket next
        elif kind == "offer":
            await self._answer(ws, message["sdp"])
        elif kind == "ice":
            await self._add_candidate(message["candidate"])
        elif kind == "media":
            self.report.remote_media.append({"audio": message["audio"], "video": message["video"]})
        elif kind == "error":
            self.report.errors.append(message)
        # hello again, presence, answer, pong and unknown types: nothing to do.

    async def _answer(self, ws, sdp: str) -> None:
        self.report.offers += 1
        await self._close_peer()  # rule 3: discard any previous peer connection
        pc = self.pc = RTCPeerConnection()  # no ICE servers: loopback / LAN
        pc.addTrack(AudioStreamTrack())
        pc.addTrack(MovingBarsTrack())

        @pc.on("track")
        def on_track(track) -> None:
            if track.kind == "video":
                task = asyncio.create_task(self._count_frames(track))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        # aiortc gathers before setLocalDescription returns: the answer carries the candidates.
        await self._send(ws, {"type": "answer", "sdp": pc.localDescription.sdp})
        await self._send(ws, {"type": "ice", "candidate": None})
        await self._send(ws, {"type": "media", "audio": True, "video": True})

    async def _add_candidate(self, candidate: dict | None) -> None:
        if self.pc is None:
            return  # ice always follows its offer on this socket (order is guaranteed)
        if candidate is None:
            await self.pc.addIceCandidate(None)  # end of the doctor's candidates
            return
        text = candidate["candidate"]
        if not text:
            return
        parsed = candidate_from_sdp(
            text.split(":", 1)[1] if text.startswith("candidate:") else text
        )
        parsed.sdpMid = candidate.get("sdpMid")
        parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
        await self.pc.addIceCandidate(parsed)
        self.report.candidates_added += 1

    async def _count_frames(self, track) -> None:
        try:
            while True:
                await track.recv()  # a decoded av.VideoFrame
                self.report.frames += 1
                if self.report.frames >= FRAMES_WANTED:
                    self.frames_decoded.set()
        except MediaStreamError:
            pass  # the peer connection was closed

    async def _close_peer(self) -> None:
        if self.pc is not None:
            pc, self.pc = self.pc, None
            await asyncio.wait_for(pc.close(), timeout=10)


# --- The test ----------------------------------------------------------------------------------


def test_an_aiortc_patient_holds_a_video_visit_with_a_chromium_doctor(chromium, embedded):
    started = time.monotonic()
    seed = embedded.seed_visits(1)
    visit_id, base = seed["visit_ids"][0], embedded.urls[0]
    patient: AiortcPatient | None = None
    context = chromium.new_context()
    try:
        patient = AiortcPatient(base, visit_id, sign_in_over_http(base, seed["links"]["patient"]))
        doctor = context.new_page()
        sign_in_with_link(doctor, base, seed["links"]["doctor"])
        expect(doctor.get_by_role("heading", name="Dashboard")).to_be_visible()

        patient.start()  # hello, then "ready": the doctor's dashboard shows them waiting
        doctor_admits_from_dashboard(doctor, visit_id, "Paolo Esposito")
        patient.wait_for(patient.in_call, "state in_call", timeout=10)

        patient.wait_for(patient.frames_decoded, f"{FRAMES_WANTED} decoded frames", timeout=20)
        assert wait_for_page_frames(doctor, minimum=FRAMES_WANTED, timeout=20) >= FRAMES_WANTED
        expect(doctor.locator("#call-status")).to_have_text("You are in the visit.")

        doctor_ends_visit(doctor)
        report = patient.result(timeout=15)
    except Exception:
        print(server_logs(embedded))
        if patient is not None:
            failure = patient.future.exception() if patient.future.done() else None
            print(f"the aiortc patient: {patient.report}; its own failure: {failure!r}")
        raise
    finally:
        if patient is not None and patient.thread.is_alive():
            patient.stop.set()
            patient.thread.join(timeout=15)
        context.close()

    assert report.frames >= FRAMES_WANTED
    assert report.hello["status"] in {"scheduled", "waiting"}
    assert report.offers >= 1
    assert report.remote_media, "the doctor's media state never reached the patient"
    assert report.statuses[-1] == "ended"
    assert "in_call" in report.statuses
    assert report.close_code == 1000
    assert report.errors == []
    assert set(report.types) <= DOCUMENTED_TYPES, f"undocumented types: {report.types}"
    assert time.monotonic() - started < 60
