"""The waiting room's connection test in a real browser, against the server's aiortc peer on
loopback: the patient presses "Test my connection" and reads a verdict with the figures."""

import time

import pytest
from playwright.sync_api import expect

from tests.browser.pages import sign_in_with_link
from tests.browser.server import running_deployment, server_logs

pytestmark = pytest.mark.browser

RESULT_JS = "() => window.consultaNetTest || null"


def wait_for_result(page, timeout: float = 40) -> dict:
    """Poll the page's last result (the CSP forbids the eval wait_for_function needs)."""
    deadline = time.monotonic() + timeout
    result = None
    while time.monotonic() < deadline:
        result = page.evaluate(RESULT_JS)
        if result and result.get("status") in ("done", "failed"):
            return result
        time.sleep(0.2)
    raise AssertionError(f"the connection test did not finish in {timeout}s: {result!r}")


@pytest.fixture(scope="module")
def embedded():
    with running_deployment("nettest") as deployment:
        yield deployment


def test_the_patient_tests_their_connection_and_reads_good(chromium, embedded):
    seed = embedded.seed_visits(1)
    visit_id, base = seed["visit_ids"][0], embedded.urls[0]
    context = chromium.new_context()
    try:
        page = context.new_page()
        sign_in_with_link(page, base, seed["links"]["patient"])
        page.goto(f"{base}/visits/{visit_id}/")
        page.locator("#nettest summary").click()
        page.get_by_role("button", name="Test my connection").click()
        result = wait_for_result(page)
        assert result["status"] == "done", result
        assert result["verdict"] == "good", result
        assert 0 < result["rttMs"] < 150
        assert result["jitterMs"] >= 0
        assert result["lossPercent"] < 2
        assert result["uploadMbps"] >= 1.5 and result["downloadMbps"] >= 1.5
        expect(page.locator("#nettest-verdict")).to_contain_text("Good")
        expect(page.locator("#nettest-status")).to_contain_text("Test finished. Good")
        expect(page.locator("#nettest-rtt")).to_contain_text(" ms")
        expect(page.locator("#nettest-download")).to_contain_text("Mbit/s")
        expect(page.get_by_role("button", name="Test my connection")).to_be_enabled()
    except Exception:
        print(server_logs(embedded))
        raise
    finally:
        context.close()
