"""The waiting room in a real browser: the doctor's message reaches the waiting patient
live; a patient who is too early sees when the room opens, with "I'm ready" disabled; a
patient whose browser refuses the camera is told how to allow it."""

import json
import time
from contextlib import contextmanager

import pytest
from playwright.sync_api import expect

from tests.browser.pages import FRAMES_DECODED_JS as FRAMES_JS
from tests.browser.pages import (
    doctor_admits_from_dashboard,
    doctor_ends_visit,
    patient_opens_waiting_room,
    sign_in_with_link,
    wait_for_frames,
)
from tests.browser.server import running_deployment, server_logs

pytestmark = pytest.mark.browser


def poll(page, function: str, timeout: float = 10) -> None:
    """Wait until `function` returns true in the page (the pages' CSP forbids eval, which
    Playwright's wait_for_function would need)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(function):
        assert time.monotonic() < deadline, f"still false after {timeout}s: {function}"
        time.sleep(0.1)


@contextmanager
def signed_in_pair(chromium, embedded):
    """A new visit for now, with the demo doctor and patient signed in, each in a browser of
    their own: (visit id, base URL, doctor's page, patient's page). The server's log is
    printed when the test fails."""
    seed = embedded.seed_visits(1)
    base = embedded.urls[0]
    doctor_context, patient_context = chromium.new_context(), chromium.new_context()
    try:
        doctor, patient = doctor_context.new_page(), patient_context.new_page()
        sign_in_with_link(doctor, base, seed["links"]["doctor"])
        sign_in_with_link(patient, base, seed["links"]["patient"])
        yield seed["visit_ids"][0], base, doctor, patient
    except Exception:
        print(server_logs(embedded))
        raise
    finally:
        doctor_context.close()
        patient_context.close()


@pytest.fixture(scope="module")
def embedded():
    with running_deployment("waiting-room") as deployment:
        yield deployment


def test_doctors_message_reaches_the_waiting_patient(chromium, embedded):
    seed = embedded.seed_visits(1)
    visit_id, base = seed["visit_ids"][0], embedded.urls[0]
    # This patient's doctor chose: no self-view for them.
    embedded.consulta(
        "shell",
        "-c",
        "from consulta.visits.models import RoomSettings, Visit; "
        f"v = Visit.objects.get(pk='{visit_id}'); "
        "RoomSettings.objects.update_or_create(patient=v.patient, "
        "defaults={'shows_self_view': False})",
    )
    doctor_context, patient_context = chromium.new_context(), chromium.new_context()
    try:
        doctor, patient = doctor_context.new_page(), patient_context.new_page()
        sign_in_with_link(patient, base, seed["links"]["patient"])
        patient_opens_waiting_room(patient, visit_id)
        sign_in_with_link(doctor, base, seed["links"]["doctor"])
        doctor.goto(f"{base}/visits/{visit_id}/")
        # Connected: the room knows the patient is waiting (a message sent before that is
        # not lost silently: the page says it was not sent).
        expect(doctor.get_by_role("button", name="Admit")).to_be_enabled()
        doctor.get_by_label("Message to the waiting patient").fill("I'm running 10 minutes late.")
        doctor.get_by_role("button", name="Show it to the patient").click()
        expect(patient.locator("#waiting-message")).to_contain_text(
            "Message from your doctor: I'm running 10 minutes late."
        )
        expect(patient.locator("#local-figure")).to_be_hidden()
        expect(doctor.locator("#local-figure")).to_be_visible()
        patient.reload()  # stored on the visit: still there after a reload
        expect(patient.locator("#waiting-message")).to_contain_text("I'm running 10 minutes")
        # The doctor changes the patient's settings from the room; the room stays open and
        # the patient's page follows at once.
        doctor.evaluate("() => { window.stillThisPage = true; }")
        doctor.get_by_text("Video visit settings for Paolo Esposito").click()
        doctor.get_by_label("The patient sees their own image").check()
        doctor.get_by_role("button", name="Save the settings").click()
        expect(doctor.locator("#room-settings-status")).to_have_text(
            "The video visit settings are saved."
        )
        expect(patient.locator("#local-figure")).to_be_visible()
        assert doctor.evaluate("() => window.stillThisPage === true")  # no reload, no call lost
    except Exception:
        print(server_logs(embedded))
        raise
    finally:
        doctor_context.close()
        patient_context.close()


def test_a_patient_too_early_sees_when_the_room_opens(chromium, embedded):
    seed = embedded.seed_visits(1)
    visit_id, base = seed["visit_ids"][0], embedded.urls[0]
    embedded.consulta(
        "shell",
        "-c",
        "from datetime import timedelta; from consulta.visits.models import Visit; "
        f"v = Visit.objects.get(pk='{visit_id}'); "
        "Visit.objects.filter(pk=v.pk).update(scheduled_at=v.scheduled_at + timedelta(hours=1))",
    )
    context = chromium.new_context()
    try:
        page = context.new_page()
        sign_in_with_link(page, base, seed["links"]["patient"])
        page.goto(f"{base}/visits/{visit_id}/")
        expect(page.locator("#join-notice")).to_contain_text("You can enter the waiting room from")
        expect(page.get_by_role("button", name="I'm ready")).to_be_disabled()
        # The status line agrees: not "press I'm ready" while it cannot be pressed.
        expect(page.locator("#call-status")).to_contain_text("when the room opens")
    except Exception:
        print(server_logs(embedded))
        raise
    finally:
        context.close()


# The browser's answer when the person, or a setting, refuses the camera and microphone.
REFUSE_MEDIA = """navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Permission denied", "NotAllowedError"));"""


def test_a_patient_whose_browser_refuses_the_camera_is_told_how_to_allow_it(chromium, embedded):
    seed = embedded.seed_visits(1)
    visit_id, base = seed["visit_ids"][0], embedded.urls[0]
    context = chromium.new_context()
    context.add_init_script(REFUSE_MEDIA)
    try:
        page = context.new_page()
        sign_in_with_link(page, base, seed["links"]["patient"])
        page.goto(f"{base}/visits/{visit_id}/")
        expect(page.get_by_role("alert")).to_have_text(
            "The browser has not allowed the camera or the microphone. Click the camera icon "
            "in the address bar, choose “Allow”, then reload the page."
        )
        # The room itself still works: the patient may still say they are ready.
        expect(page.get_by_role("button", name="I'm ready")).to_be_enabled(timeout=15_000)
    except Exception:
        print(server_logs(embedded))
        raise
    finally:
        context.close()


def test_an_admitted_patient_who_reloads_or_opens_a_second_tab_stays_in_the_call(
    chromium, embedded
):
    """A reload rejoins without knocking, the doctor seeing "reconnecting", not "left". A
    second tab (the notification's link clicked again) takes the call over: the first tab
    says where the visit went and lets go, and the doctor never hears that the patient left."""
    heard = []  # the presence states the doctor's page received about the patient
    with signed_in_pair(chromium, embedded) as (visit_id, base, doctor, patient):
        doctor.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived",
                lambda frame: (
                    heard.append(json.loads(frame)["state"])
                    if '"presence"' in frame and '"patient"' in frame
                    else None
                ),
            ),
        )
        patient_opens_waiting_room(patient, visit_id)
        doctor_admits_from_dashboard(doctor, visit_id, "Paolo Esposito")
        assert wait_for_frames(patient, minimum=5) >= 5
        patient.reload()
        # Still admitted: no "I'm ready" again; the doctor offers afresh and video flows.
        expect(patient.get_by_role("button", name="I'm ready")).to_be_disabled()
        assert wait_for_frames(patient, minimum=5) >= 5
        assert wait_for_frames(doctor, minimum=5) >= 5
        assert heard[-2:] == ["dropped", "joined"], heard
        expect(doctor.locator("#call-status")).to_have_text("You are in the visit.")
        expect(doctor.locator("#elapsed")).to_contain_text("Elapsed: 00:")
        expect(doctor.locator("#quality")).to_contain_text("Connection:", timeout=10_000)

        second = patient.context.new_page()  # the same browser: a second tab
        second.goto(patient.url)
        expect(patient.locator("#call-status")).to_contain_text("open in another window")
        expect(patient.get_by_role("button", name="Leave")).to_be_disabled()
        assert wait_for_frames(second, minimum=5) >= 5
        assert wait_for_frames(doctor, minimum=5) >= 5
        expect(doctor.locator("#call-status")).to_have_text("You are in the visit.")
        patient.close()  # the tab that let go
        assert "left" not in heard and heard[-1] == "joined", heard
        doctor_ends_visit(doctor)


def test_ready_and_admit_with_the_keyboard_keep_the_focus_on_the_controls(chromium, embedded):
    """Both buttons disable themselves when pressed; the focus goes on to Leave and End visit
    instead of back to the top of the page."""
    with signed_in_pair(chromium, embedded) as (visit_id, base, doctor, patient):
        patient.goto(f"{base}/visits/{visit_id}/")
        ready = patient.get_by_role("button", name="I'm ready")
        expect(ready).to_be_enabled()
        ready.focus()
        patient.keyboard.press("Space")
        expect(patient.locator("#call-status")).to_contain_text("Please wait to be let in")
        assert patient.evaluate("() => document.activeElement.id") == "leave-button"
        doctor.goto(f"{base}/visits/{visit_id}/")
        admit = doctor.get_by_role("button", name="Admit")
        expect(admit).to_be_enabled()
        admit.focus()
        doctor.keyboard.press("Enter")
        assert wait_for_frames(patient, minimum=5) >= 5
        assert doctor.evaluate("() => document.activeElement.id") == "end-button"
        doctor_ends_visit(doctor)


def test_devices_microphone_level_and_screen_sharing_in_a_call(chromium, embedded):
    with signed_in_pair(chromium, embedded) as (visit_id, base, doctor, patient):
        patient_opens_waiting_room(patient, visit_id)
        # The waiting room lists the devices and shows the microphone level.
        patient.get_by_text("Camera, microphone and speaker").click()
        expect(patient.locator("#camera-select option")).not_to_have_count(0)
        expect(patient.locator("#mic-select option")).not_to_have_count(0)
        poll(patient, "() => document.getElementById('mic-level').value > 0")
        doctor_admits_from_dashboard(doctor, visit_id, "Paolo Esposito")
        assert wait_for_frames(patient, minimum=5) >= 5
        # Choosing a camera during the call replaces the track without renegotiating.
        doctor.get_by_text("Camera, microphone and speaker").click()
        camera = doctor.locator("#camera-select option").first.get_attribute("value")
        doctor.locator("#camera-select").select_option(camera)
        frames = patient.evaluate(FRAMES_JS)
        assert wait_for_frames(patient, minimum=frames + 5) > frames
        # Screen sharing, with a visible way to stop it.
        doctor.get_by_role("button", name="Share screen").click()
        expect(doctor.locator("#sharing-banner")).to_be_visible()
        doctor.get_by_role("button", name="Stop sharing").click()
        expect(doctor.locator("#sharing-banner")).to_be_hidden()
        assert wait_for_frames(patient, minimum=frames + 10) > frames
        doctor_ends_visit(doctor)
