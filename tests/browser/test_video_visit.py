"""The whole visit in two real browsers with fake camera and microphone: the patient waits,
the doctor admits, video frames are decoded on both sides, the doctor ends the visit."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.pages import (
    AUDIO_PACKETS_JS,
    VIDEO_SCALE_JS,
    doctor_admits_from_dashboard,
    patient_opens_waiting_room,
    sign_in_with_link,
    wait_for_frames,
    wait_for_value,
)
from tests.browser.server import running_deployment, server_logs
from tests.services import require_postgres, require_redis

pytestmark = pytest.mark.browser

DEPLOYMENTS = {
    # name: (processes, needs PostgreSQL + Redis)
    "embedded": (1, False),
    "postgres-redis": (1, True),
    "two-processes": (2, True),
}


@pytest.fixture(params=list(DEPLOYMENTS), scope="module")
def deployment(request, tmp_path_factory):
    processes, services = DEPLOYMENTS[request.param]
    postgres = require_postgres() if services else None
    redis = require_redis() if services else None
    with running_deployment(
        request.param, processes=processes, postgres_url=postgres, redis_url=redis
    ) as running:
        yield running


@pytest.fixture
def watched_page(chromium, deployment):
    """A new page factory; every request a page makes must stay on our own servers."""
    contexts, foreign, csp_errors = [], [], []
    own = tuple(deployment.urls)

    def new_page():
        context = chromium.new_context()
        contexts.append(context)
        page = context.new_page()
        page.on(
            "request",
            lambda r: None if r.url.startswith(own + ("data:", "blob:")) else foreign.append(r.url),
        )
        page.on(
            "console",
            lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.on("dialog", lambda dialog: dialog.accept())
        return page

    yield new_page
    for context in contexts:
        context.close()
    assert foreign == [], f"pages requested other hosts: {foreign}"
    assert csp_errors == [], f"the Content-Security-Policy blocked something: {csp_errors}"


def test_doctor_and_patient_hold_a_video_visit(deployment, watched_page):
    seed = deployment.seed_visits()
    visit_id = seed["visit_ids"][0]
    doctor_url, patient_url = deployment.urls[0], deployment.urls[-1]
    doctor, patient = watched_page(), watched_page()
    try:
        sign_in_with_link(doctor, doctor_url, seed["links"]["doctor"])
        expect(doctor.get_by_role("heading", name="Dashboard")).to_be_visible()
        sign_in_with_link(patient, patient_url, seed["links"]["patient"])
        assert urlsplit(patient.url).path == "/my/"

        patient_opens_waiting_room(patient, visit_id)
        doctor_admits_from_dashboard(doctor, visit_id, "Paolo Esposito")

        assert wait_for_frames(patient, minimum=5) >= 5
        assert wait_for_frames(doctor, minimum=5) >= 5
        assert patient.evaluate(AUDIO_PACKETS_JS) > 0
        assert doctor.evaluate(AUDIO_PACKETS_JS) > 0
        expect(doctor.locator("#call-status")).to_have_text("You are in the visit.")
        # Calls start at half size for a quick first picture, then send full size.
        for page in (doctor, patient):
            wait_for_value(page, VIDEO_SCALE_JS, 1)

        # Muting is shown on the other side, without renegotiation.
        doctor.get_by_role("button", name="Mute microphone").click()
        expect(patient.locator("#remote-muted")).to_have_text("Microphone off")

        doctor.get_by_role("button", name="End visit").click()
        for page in (doctor, patient):
            expect(page.locator("#call-status")).to_have_text(
                "The visit has ended. You can close this page."
            )
        assert patient.evaluate("window.consulta.pc") is None

        doctor.goto(f"{doctor_url}/dashboard/")
        ended = doctor.locator(f'.ended-list li[data-visit-id="{visit_id}"]')
        expect(ended).to_contain_text(re.compile(r"from \d{1,2}:\d{2}.* to \d{1,2}:\d{2}"))
    except Exception:
        print(server_logs(deployment))
        raise
