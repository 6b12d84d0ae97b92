"""Where a doctor starts a video visit, in a real browser with a fake camera and microphone:
the "Start a video visit" form of the visit list, the patient's record, the Start button of
a waiting patient's row in the visit list, and a video booking in the calendar. (The
dashboard's "waiting now" panel and the guest link have their own tests.) One doctor and
one patient, signed in once, go through them in turn; the patient's record also carries
one of the room settings, "the patient sees the elapsed time", into a full call."""

import json
import re
from contextlib import contextmanager
from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import (
    doctor_ends_visit,
    patient_opens_waiting_room,
    sign_in_with_link,
    wait_for_frames,
)
from tests.browser.server import running_deployment, server_logs

pytestmark = pytest.mark.browser

PATIENT = "Paolo Esposito"  # the demo patient, whose sign-in link the seed prints
ROOM_URL = re.compile(r"/visits/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/$")
WAITING = "The patient is waiting. Press Admit to start the visit."
IN_CALL = "You are in the visit."
ENDED = "The visit has ended. You can close this page."


@pytest.fixture(scope="module")
def embedded():
    with running_deployment("start-points") as deployment:
        yield deployment


@pytest.fixture(scope="module")
def people(chromium, embedded):
    """The demo doctor and patient, each signed in in their own context, and the one visit
    the seed made for now (for the visit list's Start button)."""
    seed = embedded.seed_visits(1)
    base = embedded.urls[0]
    doctor_context, patient_context = chromium.new_context(), chromium.new_context()
    try:
        doctor, patient = doctor_context.new_page(), patient_context.new_page()
        for page in (doctor, patient):
            page.set_default_timeout(15_000)
        sign_in_with_link(doctor, base, seed["links"]["doctor"])
        sign_in_with_link(patient, base, seed["links"]["patient"])
        yield SimpleNamespace(
            base=base,
            doctor=doctor,
            patient=patient,
            seeded_visit=seed["visit_ids"][0],
            known_visits=set(seed["visit_ids"]),
        )
    finally:
        doctor_context.close()
        patient_context.close()


@contextmanager
def logs_on_failure(deployment):
    try:
        yield
    except Exception:
        print(server_logs(deployment))
        raise


def landed_in_a_new_room(doctor: Page, known_visits: set) -> str:
    """The doctor's page is the room of a visit not seen before, with the demo patient."""
    expect(doctor).to_have_url(ROOM_URL, timeout=15_000)
    visit_id = ROOM_URL.search(doctor.url).group(1)
    assert visit_id not in known_visits, "the room of an existing visit, not a new one"
    known_visits.add(visit_id)
    expect(doctor.get_by_role("heading", level=1)).to_have_text(f"Video visit with {PATIENT}")
    return visit_id


def patient_waits_and_the_room_knows(people, visit_id: str) -> None:
    """The patient finds the visit on their page and says ready; the doctor's room, open
    all along, sees them waiting (live)."""
    patient_opens_waiting_room(people.patient, visit_id)
    expect(people.doctor.get_by_role("button", name="Admit")).to_be_enabled(timeout=15_000)
    expect(people.doctor.locator("#call-status")).to_have_text(WAITING)


def test_start_from_the_video_visits_menu(people, embedded):
    doctor = people.doctor
    with logs_on_failure(embedded):
        doctor.goto(f"{people.base}/dashboard/")
        doctor.get_by_role("navigation", name="Main menu").get_by_role(
            "link", name="Video visits"
        ).click()
        expect(doctor.get_by_role("heading", level=1)).to_have_text("Video visits")
        form = doctor.get_by_role("region", name="Start a video visit")
        # The patient is searched for, as the doctor types, then chosen.
        form.get_by_label("Search by name, codice fiscale, phone or email").fill("espos")
        choice = form.get_by_role("radio", name=re.compile("^Esposito Paolo "))
        expect(choice).to_be_checked()  # the only match is chosen already
        form.get_by_role("button", name="Start").click()
        visit_id = landed_in_a_new_room(doctor, people.known_visits)
        expect(doctor.get_by_text(f"Video visit with {PATIENT} created.")).to_be_visible()
        patient_waits_and_the_room_knows(people, visit_id)
        doctor_ends_visit(doctor)
        expect(people.patient.locator("#call-status")).to_have_text(ENDED)


def test_start_from_the_patient_record_with_the_elapsed_time_hidden_from_the_patient(
    people, embedded
):
    doctor, patient = people.doctor, people.patient
    with logs_on_failure(embedded):
        doctor.goto(f"{people.base}/patients/")
        doctor.get_by_role("searchbox", name="Search").fill("Esposito")
        doctor.get_by_role("link", name="Esposito Paolo").click()
        expect(doctor.get_by_role("heading", level=1)).to_have_text(PATIENT)
        # The room setting, on the record: this patient does not see the elapsed time.
        settings = doctor.locator("#room-settings")
        settings.get_by_label("The patient sees the elapsed time").uncheck()
        settings.get_by_role("button", name="Save the settings").click()
        expect(doctor.get_by_text("The video visit settings are saved.")).to_be_visible()
        expect(settings.get_by_label("The patient sees the elapsed time")).not_to_be_checked()

        doctor.get_by_role("button", name="Start video visit").click()
        visit_id = landed_in_a_new_room(doctor, people.known_visits)
        patient_waits_and_the_room_knows(people, visit_id)
        doctor.get_by_role("button", name="Admit").click()
        assert wait_for_frames(patient, minimum=5) >= 5
        assert wait_for_frames(doctor, minimum=5) >= 5
        for page in (doctor, patient):
            expect(page.locator("#call-status")).to_have_text(IN_CALL, timeout=15_000)
        # The doctor sees the elapsed time; the patient, as the doctor chose, does not.
        expect(doctor.locator("#elapsed")).to_be_visible()
        expect(doctor.locator("#elapsed")).to_contain_text("Elapsed: 00:")
        expect(patient.locator("#elapsed")).to_be_hidden()
        config = patient.evaluate("() => document.getElementById('visit-config').textContent")
        assert json.loads(config)["showElapsed"] is False  # the setting, not chance
        # Still hidden a few seconds (and frames) later: the clock ticks on the doctor's side.
        frames = wait_for_frames(patient, minimum=1)
        assert wait_for_frames(patient, minimum=frames + 30) > frames
        expect(doctor.locator("#elapsed")).not_to_have_text("Elapsed: 00:00")
        expect(patient.locator("#elapsed")).to_be_hidden()
        doctor_ends_visit(doctor)  # a doctor admits one patient at a time
        expect(patient.locator("#call-status")).to_have_text(ENDED)


def test_start_button_of_a_waiting_patient_in_the_visit_list(people, embedded):
    doctor, visit_id = people.doctor, people.seeded_visit
    with logs_on_failure(embedded):
        doctor.goto(f"{people.base}/visits/")
        row = doctor.locator(f'tr[data-visit-id="{visit_id}"]')
        expect(row).to_contain_text(PATIENT)
        expect(row.get_by_role("link", name="Open room")).to_be_visible()
        expect(row.get_by_role("link", name="Start")).to_have_count(0)
        patient_opens_waiting_room(people.patient, visit_id)
        # The list is live: the Start button comes without a reload.
        expect(row.get_by_role("cell").nth(2)).to_have_text("Patient waiting", timeout=15_000)
        row.get_by_role("link", name="Start").click()
        expect(doctor).to_have_url(f"{people.base}/visits/{visit_id}/")
        expect(doctor.get_by_role("heading", level=1)).to_have_text(f"Video visit with {PATIENT}")
        expect(doctor.get_by_role("button", name="Admit")).to_be_enabled(timeout=15_000)
        expect(doctor.locator("#call-status")).to_have_text(WAITING)
        doctor_ends_visit(doctor)


def test_start_from_a_video_booking_in_the_calendar(people, embedded):
    doctor = people.doctor
    now = datetime.now(ZoneInfo("Europe/Rome"))  # the demo clinic's time zone
    with logs_on_failure(embedded):
        # The dashboard's way into the calendar: a video booking for now, off the template.
        doctor.goto(f"{people.base}/dashboard/")
        doctor.get_by_role("link", name="Schedule a video visit in the calendar").click()
        doctor.get_by_role("searchbox").fill("Esposito")
        doctor.get_by_role("button", name="Search", exact=True).click()
        doctor.get_by_role("link", name="Esposito Paolo").click()
        doctor.get_by_label("Appointment type").select_option(label="Videoconsulto")
        doctor.get_by_label("Contact mode").select_option(label="Video")
        doctor.get_by_label("Date and time").fill(now.strftime("%Y-%m-%dT%H:%M"))
        doctor.get_by_label("Book outside the working hours on purpose").check()
        doctor.get_by_role("button", name="Book", exact=True).click()
        expect(doctor.get_by_text(f"{PATIENT} is booked for Videoconsulto.")).to_be_visible()
        # In the calendar: the booking, then its page, then its room.
        booking = doctor.locator(".calendar-grid .booking").filter(has_text="Videoconsulto")
        expect(booking).to_have_count(1)
        expect(booking).to_contain_text(now.strftime("%H:%M"))
        booking.get_by_role("link").click()
        expect(doctor.get_by_role("heading", level=1)).to_have_text("Videoconsulto: Esposito Paolo")
        doctor.get_by_role("link", name="Open the video visit").click()
        visit_id = landed_in_a_new_room(doctor, people.known_visits)
        patient_waits_and_the_room_knows(people, visit_id)
        doctor_ends_visit(doctor)
