"""An internal call between two doctors in real browsers, with presence changing live on a
colleague's page: offline → online when a doctor signs in, in a call while they talk, and
online again once one of them hangs up."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.pages import sign_in_with_link, wait_for_frames
from tests.browser.server import running_deployment, server_logs

pytestmark = pytest.mark.browser

ANNA, MARCO, GIULIA = "Dr. Anna Rossi", "Dr. Marco Bianchi", "Giulia Verdi"
LABELS = {"online": "Online", "offline": "Offline", "in_call": "In a call"}


@pytest.fixture(scope="module")
def embedded():
    # A short grace period, for a call page closed without hanging up (5 s is the least).
    with running_deployment(
        "internal-call", extra_env={"VISIT_RECONNECT_GRACE_SECONDS": "5"}
    ) as deployment:
        yield deployment


@pytest.fixture
def new_page(chromium, embedded):
    """Pages in their own browser contexts (one person each); no page may break the CSP or
    throw."""
    contexts, problems = [], []

    def open_page():
        context = chromium.new_context()
        contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.on("pageerror", lambda error: problems.append(str(error)))
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert problems == [], problems


def expect_presence(page, name: str, state: str) -> None:
    row = page.locator(".colleague", has_text=name)
    expect(row).to_have_attribute("data-presence", state, timeout=15_000)
    expect(row.locator(".presence-state")).to_have_text(LABELS[state])


def anna_calls_marco(embedded, anna, marco):
    """Both sign in; Anna calls Marco from Colleagues. Returns the dialog on Marco's page."""
    seed = embedded.seed_visits(1)
    base = embedded.urls[0]
    sign_in_with_link(marco, base, seed["links"]["doctor2"])
    sign_in_with_link(anna, base, seed["links"]["doctor"])
    anna.goto(f"{base}/calls/")
    expect_presence(anna, MARCO, "online")
    anna.get_by_role("button", name=f"Call {MARCO}").click()
    return marco.get_by_role("dialog", name=f"{ANNA} is calling you")


def test_two_doctors_call_each_other_and_colleagues_see_it(embedded, new_page):
    seed = embedded.seed_visits(1)
    # With several server processes, Marco and Giulia use another one than Anna.
    base, other = embedded.urls[0], embedded.urls[-1]
    anna, marco, giulia = new_page(), new_page(), new_page()
    try:
        sign_in_with_link(anna, base, seed["links"]["doctor"])
        anna.get_by_role("link", name="Colleagues").click()
        expect(anna.get_by_role("heading", name="Colleagues")).to_be_visible()
        expect_presence(anna, MARCO, "offline")
        call_marco = anna.get_by_role("button", name=f"Call {MARCO}")
        expect(call_marco).to_be_disabled()
        expect(anna.locator(".colleague", has_text=MARCO)).to_contain_text(
            "Offline: cannot be called now."
        )

        # Marco signs in: Anna's page, loaded before, shows him online without a reload.
        sign_in_with_link(marco, other, seed["links"]["doctor2"])
        expect_presence(anna, MARCO, "online")
        expect(call_marco).to_be_enabled()

        call_marco.click()
        expect(anna.locator("#call-status")).to_have_text(f"Calling {MARCO}…")
        expect(anna.get_by_role("button", name="Cancel call")).to_be_visible()

        # On Marco's dashboard, the dialog rings with Accept focused.
        dialog = marco.get_by_role("dialog", name=f"{ANNA} is calling you")
        expect(dialog).to_be_visible(timeout=15_000)
        accept = dialog.get_by_role("button", name="Accept")
        expect(accept).to_be_focused()
        accept.click()
        marco.wait_for_url(f"{other}/calls/*/")
        assert urlsplit(anna.url).path == urlsplit(marco.url).path

        assert wait_for_frames(marco, minimum=5) >= 5
        assert wait_for_frames(anna, minimum=5) >= 5
        expect(anna.locator("#call-status")).to_have_text("You are in the call.")
        expect(anna.locator("#elapsed")).to_contain_text("Elapsed: 00:")
        expect(anna.locator("#quality")).to_contain_text("Connection:", timeout=10_000)
        expect(anna.get_by_role("button", name="Hang up")).to_be_visible()

        # A third person's page: both are in a call, and cannot be called.
        sign_in_with_link(giulia, other, seed["links"]["secretary"])
        giulia.goto(f"{other}/calls/")
        expect_presence(giulia, ANNA, "in_call")
        expect_presence(giulia, MARCO, "in_call")
        expect(giulia.get_by_role("button", name=f"Call {MARCO}")).to_be_disabled()
        expect(giulia.locator(".colleague", has_text=MARCO)).to_contain_text(
            "In a call: try again later."
        )

        # Marco hangs up: the call ends for both, and both are online again.
        marco.get_by_role("button", name="Hang up").click()
        expect(marco.locator("#call-status")).to_have_text("The call has ended.")
        expect(anna.locator("#call-status")).to_have_text("The call has ended.")
        expect(anna.get_by_role("link", name="Back to your colleagues")).to_be_visible()
        expect_presence(giulia, ANNA, "online")
        expect_presence(giulia, MARCO, "online")
        expect(giulia.get_by_role("button", name=f"Call {MARCO}")).to_be_enabled()
    except Exception:
        print(server_logs(embedded))
        raise


def test_a_reloaded_call_page_is_back_in_the_call_and_a_closed_one_hangs_up(embedded, new_page):
    base = embedded.urls[0]
    anna, marco = new_page(), new_page()
    try:
        anna_calls_marco(embedded, anna, marco).get_by_role("button", name="Accept").click()
        marco.wait_for_url(f"{base}/calls/*/")
        assert wait_for_frames(anna, minimum=5) >= 5
        anna.evaluate("window.firstPc = window.consulta.pc")

        # Marco reloads his call page: Anna waits for him, and they talk again.
        marco.reload()
        expect(anna.locator("#call-status")).to_have_text(
            f"{MARCO}’s connection dropped. Reconnecting…"
        )
        expect(marco.locator("#call-status")).to_have_text("You are in the call.", timeout=15_000)
        expect(anna.locator("#call-status")).to_have_text("You are in the call.")
        assert wait_for_frames(marco, minimum=5) >= 5
        anna.wait_for_function("window.consulta.pc !== window.firstPc")
        assert wait_for_frames(anna, minimum=5) >= 5
        anna.wait_for_timeout(6_000)  # past the grace period: the call goes on
        expect(marco.locator("#call-status")).to_have_text("You are in the call.")

        # Marco opens the call in a second tab: it goes on there, the first one says so.
        second = marco.context.new_page()
        second.goto(marco.url)
        expect(marco.locator("#call-status")).to_have_text(
            "This call is now open in another window or on another device, and goes on "
            "there. You can close this page."
        )
        expect(second.locator("#call-status")).to_have_text("You are in the call.", timeout=15_000)
        assert wait_for_frames(second, minimum=5) >= 5
        marco = second

        # Anna closes her tab without hanging up: after the grace period, the call ends.
        anna.close()
        expect(marco.locator("#call-status")).to_have_text(
            f"{ANNA}’s connection dropped. Reconnecting…"
        )
        expect(marco.locator("#call-status")).to_have_text("The call has ended.", timeout=15_000)
    except Exception:
        print(server_logs(embedded))
        raise


def test_a_declined_call_tells_the_caller(embedded, new_page):
    anna, marco = new_page(), new_page()
    try:
        dialog = anna_calls_marco(embedded, anna, marco)
        expect(dialog).to_be_visible(timeout=15_000)
        marco.keyboard.press("Escape")  # declines
        expect(dialog).to_be_hidden()
        expect(anna.locator("#call-status")).to_have_text(f"{MARCO} declined.")
        expect(anna.get_by_role("button", name="Cancel call")).to_be_disabled()
    except Exception:
        print(server_logs(embedded))
        raise


def test_a_doctor_chooses_a_ringtone_and_hears_it(embedded, new_page):
    seed = embedded.seed_visits(1)
    base = embedded.urls[0]
    page = new_page()
    try:
        sign_in_with_link(page, base, seed["links"]["doctor"])
        page.get_by_role("link", name="Ringtone").click()
        page.get_by_label("Chime").check()
        page.get_by_label("Volume").fill("35")
        expect(page.locator("#volume-value")).to_have_text("35")
        play = page.get_by_role("button", name="Play")
        play.click()
        stop = page.get_by_role("button", name="Stop")
        expect(stop).to_be_visible()
        expect(page.get_by_role("button", name="Play")).to_be_visible(timeout=5_000)  # one ring
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".messages")).to_contain_text("Your ringtone settings are saved.")
        expect(page.get_by_label("Chime")).to_be_checked()
        expect(page.locator("#volume-value")).to_have_text("35")
    except Exception:
        print(server_logs(embedded))
        raise
