"""A video visit survives the patient's browser going offline for 5 seconds, without a
reload on either side: video flows both ways again once the patient is back, and both pages
say "You are in the visit." again.

Chromium's offline emulation (`BrowserContext.set_offline`) stops new requests, holds the
open WebSocket's frames until it is back online (it does not close it), and does not touch
WebRTC media at all: a call between two pages of one machine goes on undisturbed. So, as
bench/reconnect.py does, the call is forced through a TURN relay (coturn on loopback,
ICE_TRANSPORT_POLICY=relay), the patient's page reaches the relay through a UDP forwarder,
and the outage drops every datagram of that forwarder while the patient's context is
offline."""

import json
import time
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from bench.reconnect import BENCH_INIT_JS, running_coturn, running_link
from tests.browser.pages import (
    PC_FRAMES_JS,
    doctor_ends_visit,
    patient_opens_waiting_room,
    sign_in_with_link,
    wait_for_frames,
    wait_for_more_frames,
)
from tests.browser.server import running_deployment, server_logs
from tests.services import require_coturn

pytestmark = pytest.mark.browser

OFFLINE_SECONDS = 5
IN_CALL = "You are in the visit."
# visits/strings.py: "reconnecting" (the media path is being renegotiated) and
# "peerReconnecting" (the server saw the other side's socket drop).
RECONNECTING = (
    "Connection lost. Reconnecting…",
    "The other participant’s connection dropped. Reconnecting…",
)

# From now on, every text #call-status takes, with Date.now() (nothing is missed between
# two polls); and a mark that a reload would wipe.
RECORD_STATUS_JS = """() => {
  const box = document.getElementById("call-status");
  window.__statuses = [[Date.now(), box.textContent]];
  new MutationObserver(() => window.__statuses.push([Date.now(), box.textContent])).observe(
    box, {childList: true, characterData: true, subtree: true});
  window.__sameDocument = true;
}"""


@pytest.fixture(scope="module")
def turn(tmp_path_factory):
    require_coturn()
    with (
        running_coturn(tmp_path_factory.mktemp("coturn")) as coturn,
        running_link(coturn["port"]) as (link_port, link_up),
    ):
        yield SimpleNamespace(**coturn, link_port=link_port, link_up=link_up)


@pytest.fixture(scope="module")
def relayed(turn):
    env = {
        "TURN_URLS": f"turn:127.0.0.1:{turn.port}?transport=udp",
        "TURN_SECRET": turn.secret,
        "ICE_TRANSPORT_POLICY": "relay",
    }
    with running_deployment("offline-recovery", extra_env=env) as deployment:
        yield deployment


@contextmanager
def admitted_call(chromium, deployment, turn):
    """The demo patient admitted by their doctor in a new visit, video flowing both ways;
    the patient's page reaches the relay through the forwarder. Yields the pages and the
    patient's context; the doctor ends the visit afterwards."""
    seed = deployment.seed_visits(1)
    visit_id, base = seed["visit_ids"][0], deployment.urls[0]
    doctor_context, patient_context = chromium.new_context(), chromium.new_context()
    # BENCH_INIT_JS rewrites the TURN address of the patient's peer connections (to the
    # forwarder's) and records what each page's WebSocket and peer connections do.
    route = [f"127.0.0.1:{turn.port}", f"127.0.0.1:{turn.link_port}"]
    patient_context.add_init_script(f"window.__benchTurnRoute = {json.dumps(route)};")
    for context in (doctor_context, patient_context):
        context.add_init_script(BENCH_INIT_JS)
    pages = {}
    try:
        doctor, patient = doctor_context.new_page(), patient_context.new_page()
        pages = {"doctor": doctor, "patient": patient}
        sign_in_with_link(doctor, base, seed["links"]["doctor"])
        sign_in_with_link(patient, base, seed["links"]["patient"])
        patient_opens_waiting_room(patient, visit_id)
        doctor.goto(f"{base}/visits/{visit_id}/")
        admit = doctor.get_by_role("button", name="Admit")
        expect(admit).to_be_enabled(timeout=15_000)
        admit.click()
        for page in pages.values():
            wait_for_frames(page, minimum=10)
            expect(page.locator("#call-status")).to_have_text(IN_CALL, timeout=15_000)
            page.evaluate(RECORD_STATUS_JS)
        yield SimpleNamespace(**pages, pages=pages, patient_context=patient_context)
        doctor_ends_visit(doctor)  # a doctor admits one patient at a time
    except BaseException:
        for role, page in pages.items():
            print(role, "statuses", page.evaluate("() => window.__statuses || []"))
            print(role, "events", page.evaluate("() => window.__benchEvents || []"))
        print(server_logs(deployment))
        # Not left in progress: the doctor could admit nobody else.
        deployment.consulta(
            "shell",
            "-c",
            "from consulta.visits import services; from consulta.visits.models import Visit; "
            f"v = Visit.objects.get(pk='{visit_id}'); "
            "services.visit_end(visit_id=v.pk, user=v.doctor.user)",
        )
        raise
    finally:
        turn.link_up.value = 1
        doctor_context.close()
        patient_context.close()


def patient_offline(call, turn, seconds: float) -> SimpleNamespace:
    """The outage: the patient's datagrams dropped and their context offline for `seconds`
    (to within a few milliseconds: nothing slow runs in its last half second); returns the
    doctor's #call-status texts during it (polled, and as recorded), each page's current
    connection and decoded frames 1 s into it and near its end, and its true length."""
    cut_ms = time.time() * 1000  # Date.now() in the pages: the same clock
    cut = time.monotonic()
    turn.link_up.value = 0
    try:
        call.patient_context.set_offline(True)
        time.sleep(1)  # what was in flight is decoded by now
        frozen = {role: page.evaluate(PC_FRAMES_JS) for role, page in call.pages.items()}
        seen = set()
        while time.monotonic() < cut + seconds - 0.5:
            seen.add(call.doctor.locator("#call-status").text_content())
            time.sleep(0.2)
        at_end = {role: page.evaluate(PC_FRAMES_JS) for role, page in call.pages.items()}
        time.sleep(max(0.0, cut + seconds - time.monotonic()))
    finally:
        back_ms = time.time() * 1000
        turn.link_up.value = 1
        call.patient_context.set_offline(False)
    recorded = call.doctor.evaluate("() => window.__statuses")
    seen |= {text for at, text in recorded if cut_ms <= at <= back_ms}
    return SimpleNamespace(
        doctor_saw=seen, frozen=frozen, at_end=at_end, seconds=(back_ms - cut_ms) / 1000
    )


def test_the_call_recovers_after_the_patient_is_offline_for_5_seconds(chromium, relayed, turn):
    with admitted_call(chromium, relayed, turn) as call:
        outage = patient_offline(call, turn, OFFLINE_SECONDS)
        # The cut was real: the patient's video stopped reaching the doctor.
        before, after = outage.frozen["doctor"], outage.at_end["doctor"]
        assert after[0] != before[0] or after[1] - before[1] < 10, (before, after)
        # Back: within 15 s video flows again both ways, on the same pages (no reload), and
        # both say they are in the visit.
        for role, page in call.pages.items():
            wait_for_more_frames(page, outage.at_end[role], more=10, timeout=15)
        for page in call.pages.values():
            expect(page.locator("#call-status")).to_have_text(IN_CALL, timeout=15_000)
            assert page.evaluate("() => window.__sameDocument === true"), "the page reloaded"


class NoReconnectingStatus(AssertionError):
    """The doctor's page said nothing of the outage while it lasted."""


def test_the_doctor_sees_reconnecting_while_the_patient_is_offline_for_5_seconds(
    chromium, relayed, turn
):
    with admitted_call(chromium, relayed, turn) as call:
        outage = patient_offline(call, turn, OFFLINE_SECONDS)
        if not outage.doctor_saw & set(RECONNECTING):
            raise NoReconnectingStatus(
                f"during {outage.seconds:.2f} s offline the doctor's page said only "
                f"{sorted(outage.doctor_saw)}"
            )
