"""The calendar in a real browser: a receptionist books a video visit for a doctor, the
patient books another time online, and the doctor sees both in their calendar."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.pages import sign_in_with_link
from tests.browser.server import running_deployment, server_logs

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def embedded():
    with running_deployment("calendar") as deployment:
        yield deployment


def test_receptionist_and_patient_book_and_the_doctor_sees_both(chromium, embedded):
    seed = embedded.seed_visits(0)
    base = embedded.urls[0]
    today = datetime.now(ZoneInfo("Europe/Rome")).date().isoformat()
    secretary = chromium.new_context()
    patient = chromium.new_context()
    doctor = chromium.new_context()
    try:
        page = secretary.new_page()
        sign_in_with_link(page, base, seed["links"]["secretary"])
        page.get_by_role("link", name="Calendar", exact=True).click()
        page.get_by_label("Clinician").select_option(label="Dr. Anna Rossi")
        page.get_by_role("button", name="Show").click()
        page.get_by_role("link", name="Later").click()  # next week: every slot is ahead
        page.get_by_role("link", name="Book Videoconsulto at").first.click()
        page.get_by_label("Search by name").fill("Esposito")
        page.get_by_role("button", name="Search").click()
        page.get_by_role("link", name="Esposito Paolo").click()
        expect(page.get_by_label("Appointment type")).to_have_value(
            page.get_by_label("Appointment type")
            .locator("option", has_text="Videoconsulto")
            .get_attribute("value")
        )
        page.get_by_label("Internal notes").fill("Controllo pressione")
        page.get_by_role("button", name="Book", exact=True).click()
        expect(page.get_by_text("Paolo Esposito is booked for Videoconsulto.")).to_be_visible()
        expect(page.locator(".calendar-grid .booking")).to_have_count(1)
        expect(page.locator(".calendar-grid .booking")).to_contain_text("Esposito Paolo")

        page = patient.new_page()
        sign_in_with_link(page, base, seed["links"]["patient"])
        page.get_by_role("link", name="My appointments").first.click()
        expect(page.get_by_text("Videoconsulto · Dr. Anna Rossi")).to_be_visible()
        page.get_by_role("link", name="Book an appointment").click()
        page.get_by_role("region", name="Dr. Anna Rossi").get_by_role(
            "link", name="Visita ambulatoriale"
        ).click()
        page.locator("input[name=start]").first.check()
        page.get_by_role("button", name="Book this time").click()
        expect(page.get_by_text("Your appointment is booked.")).to_be_visible()
        expect(page.locator("#upcoming-title + ul > li")).to_have_count(2)

        page = doctor.new_page()
        sign_in_with_link(page, base, seed["links"]["doctor"])
        page.goto(f"{base}/calendar/?start={today}&days=14")
        bookings = page.locator(".calendar-grid .booking")
        expect(bookings).to_have_count(2)
        expect(bookings.filter(has_text="Videoconsulto")).to_have_count(1)
        expect(bookings.filter(has_text="Visita ambulatoriale")).to_have_count(1)
    except Exception:
        print(server_logs(embedded))
        raise
    finally:
        for context in (secretary, patient, doctor):
            context.close()
