"""The waiting room in a real browser: the doctor's message reaches the waiting patient
live, and a patient who is too early sees when the room opens, with "I'm ready" disabled."""

import pytest
from playwright.sync_api import expect

from tests.browser.pages import (
    doctor_admits_from_dashboard,
    patient_opens_waiting_room,
    sign_in_with_link,
    wait_for_frames,
)
from tests.browser.server import running_deployment, server_logs

pytestmark = pytest.mark.browser


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
        doctor.get_by_label("Message to the waiting patient").fill("I'm running 10 minutes late.")
        doctor.get_by_role("button", name="Show it to the patient").click()
        expect(patient.locator("#waiting-message")).to_contain_text(
            "Message from your doctor: I'm running 10 minutes late."
        )
        expect(patient.locator("#local-figure")).to_be_hidden()
        expect(doctor.locator("#local-figure")).to_be_visible()
        patient.reload()  # stored on the visit: still there after a reload
        expect(patient.locator("#waiting-message")).to_contain_text("I'm running 10 minutes")
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
    except Exception:
        print(server_logs(embedded))
        raise
    finally:
        context.close()


def test_an_admitted_patient_who_reloads_rejoins_without_knocking(chromium, embedded):
    seed = embedded.seed_visits(1)
    visit_id, base = seed["visit_ids"][0], embedded.urls[0]
    doctor_context, patient_context = chromium.new_context(), chromium.new_context()
    try:
        doctor, patient = doctor_context.new_page(), patient_context.new_page()
        sign_in_with_link(doctor, base, seed["links"]["doctor"])
        sign_in_with_link(patient, base, seed["links"]["patient"])
        patient_opens_waiting_room(patient, visit_id)
        doctor_admits_from_dashboard(doctor, visit_id, "Paolo Esposito")
        assert wait_for_frames(patient, minimum=5) >= 5
        patient.reload()
        # Still admitted: no "I'm ready" again; the doctor offers afresh and video flows.
        expect(patient.get_by_role("button", name="I'm ready")).to_be_disabled()
        assert wait_for_frames(patient, minimum=5) >= 5
        assert wait_for_frames(doctor, minimum=5) >= 5
        expect(doctor.locator("#call-status")).to_have_text("You are in the visit.")
        expect(doctor.locator("#elapsed")).to_contain_text("Elapsed: 00:")
        expect(doctor.locator("#quality")).to_contain_text("Connection:", timeout=10_000)
    except Exception:
        print(server_logs(embedded))
        raise
    finally:
        doctor_context.close()
        patient_context.close()
