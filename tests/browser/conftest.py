import pytest
from playwright.sync_api import sync_playwright

from tests.browser.pages import launch_chromium
from tests.services import require_chromium


@pytest.fixture(scope="session")
def chromium():
    executable = require_chromium()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, executable)
        yield browser
        browser.close()
