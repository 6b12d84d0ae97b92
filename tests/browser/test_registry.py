"""The registry in a real browser: search as you type, and an import from the upload to the
confirmed preview, on the embedded default."""

import pytest
from playwright.sync_api import expect
from stdnum.it import codicefiscale

from tests.browser.pages import sign_in_with_link
from tests.browser.server import running_deployment, server_logs

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def embedded():
    with running_deployment("registry") as deployment:
        yield deployment


def test_doctor_searches_as_they_type_and_imports_a_list(chromium, embedded, tmp_path):
    seed = embedded.seed_visits(0)
    base = embedded.urls[0]
    context = chromium.new_context()
    page = context.new_page()
    try:
        sign_in_with_link(page, base, seed["links"]["doctor"])
        page.get_by_role("link", name="Patients").click()
        rows = page.locator("table.patients tbody tr")
        expect(rows).to_have_count(2)  # Paolo Esposito and Sara Conti

        # One row menu open at a time; Escape closes it and gives the focus back to its button.
        open_menus = page.locator("details.menu[open]")
        page.get_by_label("Actions for Paolo Esposito").click()
        sara = page.get_by_label("Actions for Sara Conti")
        sara.click()
        expect(open_menus).to_have_count(1)
        expect(open_menus).to_contain_text("Move to archive")
        page.keyboard.press("Escape")
        expect(open_menus).to_have_count(0)
        expect(sara).to_be_focused()
        sara.press("Enter")
        page.locator("h1").click()  # a click elsewhere closes it too
        expect(open_menus).to_have_count(0)

        page.get_by_label("Search").press_sequentially("cont", delay=30)
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("Conti Sara")
        assert "q=cont" in page.url  # the address follows the search
        # Back from a record: the whole list as it was, not the results the search fetched.
        page.get_by_role("link", name="Conti Sara").click()
        expect(page.get_by_role("heading", name="Sara Conti")).to_be_visible()
        page.go_back()
        expect(page.get_by_label("Search")).to_have_value("cont")
        expect(rows).to_have_count(1)

        body = "MRARSS85T10A562"
        cf = body + codicefiscale.calc_check_digit(body)
        upload = tmp_path / "pazienti.csv"
        upload.write_text(
            f"Codice fiscale;Nome;Cognome;Cellulare\n{cf};Mario;Rossi;3331112222\n"
            "RSSXXX85T10A562X;Bad;Row;\n",
            encoding="utf-8",
        )
        page.get_by_role("link", name="Import patients").click()
        page.get_by_label("File (CSV or XLSX)").set_input_files(str(upload))
        page.get_by_role("button", name="Read the file").click()
        confirm = page.get_by_role("button", name="Confirm the import")
        expect(confirm).to_be_visible(timeout=15_000)  # the progress page reloads itself
        expect(page.locator("table.summary")).to_contain_text("1")
        expect(page.get_by_text("is not a valid codice fiscale")).to_be_visible()
        confirm.click()
        expect(page.get_by_text("The import is done.")).to_be_visible(timeout=15_000)

        page.goto(f"{base}/patients/?q=Mario")
        expect(page.locator("table.patients tbody tr")).to_have_count(1)
        expect(page.locator("table.patients")).to_contain_text(cf)

        # A row's "Invite" opens the record's invitation, its pre-set text there to read and
        # edit; nothing is sent until "Send the invitation".
        page.goto(f"{base}/patients/?q=Esposito")
        page.get_by_label("Actions for Paolo Esposito").click()
        page.get_by_role("link", name="Invite").click()
        text = page.get_by_label("Invitation text")
        expect(text).to_be_visible()
        expect(page.locator("table.patients")).to_have_count(0)
        text.fill("Buongiorno, ecco il link per Consulta.")
        page.get_by_role("button", name="Send the invitation").click()
        expect(page.get_by_text("An invitation has been sent to")).to_be_visible()
        page.goto(f"{base}/patients/?q=Esposito")
        expect(page.locator("table.patients tbody tr").first).to_contain_text("Invited on")
    except Exception:
        print(server_logs(embedded))
        raise
    finally:
        context.close()


@pytest.mark.parametrize("width", [390, 768])
def test_the_registry_fits_a_phone_and_a_tablet(chromium, embedded, width):
    """Nothing makes the page scroll sideways (the header's menu wraps, the list's table
    scrolls within its own box), and a row's menu opens within reach."""
    seed = embedded.seed_visits(0)
    base = embedded.urls[0]
    context = chromium.new_context(viewport={"width": width, "height": 844})
    page = context.new_page()

    def scrolls_sideways() -> bool:
        return page.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )

    def within_the_width(locator) -> bool:
        box = locator.bounding_box()
        return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width

    try:
        sign_in_with_link(page, base, seed["links"]["doctor"])
        for path in ("/patients/", "/patients/new/", "/calendar/"):
            page.goto(f"{base}{path}")
            assert not scrolls_sideways(), path
        page.goto(f"{base}/patients/")
        menu = page.get_by_label("Actions for Paolo Esposito")
        assert within_the_width(menu)  # no sideways scroll of the table needed to reach it
        menu.click()
        archive = page.get_by_role("link", name="Move to archive")
        expect(archive).to_be_visible()
        assert within_the_width(archive)
        page.keyboard.press("Escape")
        page.get_by_role("link", name="Esposito Paolo").click()
        expect(page.get_by_role("heading", name="Paolo Esposito")).to_be_visible()
        assert not scrolls_sideways(), "the record"
    except Exception:
        print(server_logs(embedded))
        raise
    finally:
        context.close()
