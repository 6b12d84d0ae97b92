"""A first consultation without a patient record, in real browsers: the doctor opens a room
for a guest and copies the link; the guest, with no account, joins and is admitted, and video
flows both ways; a third browser with the same link is told it was used; a new link sends the
guest's browser out and brings it back into the call; the doctor ends the visit and saves
the guest as a patient, whose record then lists the visit."""

import re
import time
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.pages import sign_in_with_link, wait_for_frames
from tests.browser.server import running_deployment, server_logs

pytestmark = pytest.mark.browser

GUEST = "Giulia Neri"
GUEST_CF = "NREGLI90A41H501G"  # a valid codice fiscale: the demo clinic is Italian


@pytest.fixture(scope="module")
def embedded():
    with running_deployment("guest-visit") as deployment:
        yield deployment


def poll(page, function: str, timeout: float = 10):
    """The value of `function` in the page once it is truthy (the pages' CSP forbids eval,
    which Playwright's wait_for_function would need)."""
    deadline = time.monotonic() + timeout
    while not (value := page.evaluate(function)):
        assert time.monotonic() < deadline, f"still false after {timeout}s: {function}"
        time.sleep(0.1)
    return value


def test_a_guest_joins_with_a_link_and_is_saved_as_a_patient(chromium, embedded):
    seed = embedded.seed_visits(0)
    base = embedded.urls[0]
    doctor_context = chromium.new_context(permissions=["clipboard-read", "clipboard-write"])
    guest_context, stranger_context = chromium.new_context(), chromium.new_context()
    csp_errors: list[str] = []
    try:
        doctor = doctor_context.new_page()
        guest = guest_context.new_page()
        stranger = stranger_context.new_page()
        for page in (doctor, guest):
            page.on(
                "console",
                lambda m: (
                    csp_errors.append(m.text) if "Content Security Policy" in m.text else None
                ),
            )

        # The doctor opens a room for the guest from the dashboard and copies the link.
        sign_in_with_link(doctor, base, seed["links"]["doctor"])
        doctor.goto(f"{base}/dashboard/")
        doctor.get_by_label("Guest's name").fill(GUEST)
        doctor.get_by_role("button", name="Open room").click()
        expect(doctor.locator("h1")).to_contain_text(f"Video visit with {GUEST}")
        link_box = doctor.locator("#guest-link-url")
        expect(link_box).to_be_visible()
        link = link_box.input_value()
        assert re.fullmatch(rf"{re.escape(base)}/g/[A-Za-z0-9_-]{{40,}}/", link), link
        assert "#" not in doctor.url  # the token left the address bar and the history
        doctor.get_by_role("button", name="Copy link").click()
        expect(doctor.locator("#guest-link-copied")).to_have_text("Copied.")
        assert doctor.evaluate("() => navigator.clipboard.readText()") == link
        visit_path = urlsplit(doctor.url).path

        # The guest, with no account, opens the link, joins and says they are ready.
        guest.goto(link)
        expect(guest.locator("h1")).to_contain_text("Video visit with Dr. Anna Rossi")
        guest.get_by_role("button", name="Join the video visit").click()
        expect(guest).to_have_url(f"{base}{visit_path}")
        ready = guest.get_by_role("button", name="I'm ready")
        expect(ready).to_be_enabled()
        ready.click()
        expect(guest.locator("#call-status")).to_contain_text("Please wait to be let in")

        # The doctor's page says so at once, without a reload.
        expect(doctor.locator("#guest-link-state")).to_contain_text(f"{GUEST} opened the link at")
        # At the clinic's time (Rome), as the page says it after a reload, whatever the
        # browser's own time zone.
        rome = datetime.now(ZoneInfo("Europe/Rome"))
        shown = doctor.locator("#guest-link-state").inner_text()
        assert any(f"at {(rome - timedelta(minutes=m)):%H:%M}." in shown for m in (0, 1)), shown

        # The doctor admits the guest; video frames are decoded on both sides.
        admit = doctor.get_by_role("button", name="Admit")
        expect(admit).to_be_enabled(timeout=15_000)
        admit.click()
        assert wait_for_frames(guest, minimum=5) >= 5
        assert wait_for_frames(doctor, minimum=5) >= 5
        expect(doctor.locator("#remote-caption")).to_have_text(GUEST)

        # A third browser with the same link: told it was used, the call goes on.
        stranger.goto(link)
        expect(stranger.locator("#guest-link-refusal")).to_have_text(
            "This link has already been used. Ask the doctor for a new one."
        )
        expect(stranger.get_by_role("button", name="Join the video visit")).to_have_count(0)
        stranger.goto(f"{base}{visit_path}")
        expect(stranger).to_have_url(re.compile(r"/accounts/login/"))
        assert guest.evaluate("() => window.consulta.status") == "in_call"

        # The guest lost the link, say: the doctor makes a new one. The browser holding the
        # old one is sent out of the room at once; the new link brings the guest back into
        # the call, without knocking.
        doctor.get_by_role("button", name="Create a new link").click()
        expect(guest.locator("#call-status")).to_have_text(
            "Your doctor has sent you a new link for this video visit. This page no longer "
            "works: open the new link."
        )
        new_link = doctor.locator("#guest-link-url").input_value()
        assert new_link != link
        guest.goto(new_link)
        guest.get_by_role("button", name="Join the video visit").click()
        expect(guest).to_have_url(f"{base}{visit_path}")
        before = wait_for_frames(guest, minimum=1)
        assert wait_for_frames(guest, minimum=before + 5) >= before + 5
        assert guest.evaluate("() => window.consulta.status") == "in_call"

        # The doctor ends the visit, then saves the guest as a patient.
        doctor.once("dialog", lambda dialog: dialog.accept())
        doctor.get_by_role("button", name="End visit").click()
        expect(guest.locator("#call-status")).to_have_text(
            "The visit has ended. You can close this page."
        )
        doctor.get_by_role("link", name="Save the guest as a patient").click()
        expect(doctor.get_by_label("First name")).to_have_value("Giulia")
        expect(doctor.get_by_label("Last name")).to_have_value("Neri")
        doctor.get_by_label("Codice fiscale").fill(GUEST_CF)
        doctor.get_by_role("button", name="Add the patient").click()
        expect(doctor.locator("h1")).to_contain_text("Neri")
        visits = doctor.locator("section[aria-labelledby=visits-title]")
        expect(visits).to_contain_text("Ended")
        expect(visits).to_contain_text("Anna Rossi")

        # The used link now says the visit has ended.
        stranger.goto(new_link)
        expect(stranger.locator("#guest-link-refusal")).to_have_text("This visit has ended.")
        assert csp_errors == []
    except Exception:
        print(server_logs(embedded))
        raise
    finally:
        doctor_context.close()
        guest_context.close()
        stranger_context.close()
