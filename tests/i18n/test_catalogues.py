"""Every user-facing string is translated into it, fr and nb, and the committed .mo files
are the compiled .po files (run `make messages` after changing strings)."""

from pathlib import Path

import polib
import pytest
from django.conf import settings

LOCALE = Path(settings.BASE_DIR) / "locale"
LANGUAGES = [code for code, _ in settings.LANGUAGES if code != "en"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogue_is_complete(language):
    po = polib.pofile(str(LOCALE / language / "LC_MESSAGES" / "django.po"))
    missing = [entry.msgid for entry in po.untranslated_entries()]
    fuzzy = [entry.msgid for entry in po.fuzzy_entries()]
    assert missing == [], f"{language}: untranslated {missing}"
    assert fuzzy == [], f"{language}: fuzzy {fuzzy}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_compiled_catalogue_matches_the_po_file(language):
    folder = LOCALE / language / "LC_MESSAGES"
    po = polib.pofile(str(folder / "django.po"))
    mo = polib.mofile(str(folder / "django.mo"))
    expected = {(e.msgctxt, e.msgid): (e.msgstr, e.msgstr_plural) for e in po.translated_entries()}
    compiled = {(e.msgctxt, e.msgid): (e.msgstr, e.msgstr_plural) for e in mo}
    compiled.pop((None, ""), None)  # the header
    assert compiled == expected, "run `make messages` to recompile the catalogues"


@pytest.mark.parametrize("language", LANGUAGES)
def test_placeholders_survive_translation(language):
    import re

    po = polib.pofile(str(LOCALE / language / "LC_MESSAGES" / "django.po"))
    pattern = re.compile(r"%\(\w+\)[sd]|\{\{\s*\w+\s*\}\}|%[sd]")
    for entry in po.translated_entries():
        expected = sorted(pattern.findall(entry.msgid))
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        for translation in translations:
            assert sorted(pattern.findall(translation)) == expected, (
                f"{language}: {entry.msgid!r} -> {translation!r}"
            )


# The names makemessages (xgettext) reads strings from: a translation function imported under
# any other name hides its strings from the catalogues, and they stay in English.
_GETTEXT_FUNCTIONS = (
    "gettext",
    "gettext_lazy",
    "ngettext",
    "ngettext_lazy",
    "pgettext",
    "pgettext_lazy",
)


def test_translation_functions_keep_names_makemessages_reads():
    code = Path(settings.BASE_DIR)
    hidden = []
    for path in code.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if "from django.utils.translation import" not in line or " as " not in line:
                continue
            for name in _GETTEXT_FUNCTIONS:
                if f"import {name} as " in line and not line.rstrip().endswith(f"{name} as _"):
                    hidden.append(f"{path.relative_to(code)}:{number}: {line.strip()}")
    assert hidden == []


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("it", "2 novembre 2026, 09:05"),
        ("fr", "2 novembre 2026 09:05"),
        ("nb", "2. november 2026 09:05"),
        ("en", "2 November 2026, 09:05"),
    ],
)
def test_dates_write_the_month_as_each_language_does(language, expected):
    """Lower case within an Italian date, and no leading zero (Django: "02 Novembre 2026")."""
    from datetime import datetime

    from django.utils import formats, translation

    with translation.override(language):
        assert formats.date_format(datetime(2026, 11, 2, 9, 5), "DATETIME_FORMAT") == expected
