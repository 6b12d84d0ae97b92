"""Compile every consulta/locale/*/LC_MESSAGES/django.po to its .mo with polib, so that no
gettext tools are needed to run Consulta. The .mo files are committed."""

from pathlib import Path

import polib

LOCALE = Path(__file__).resolve().parents[1] / "consulta" / "locale"

for po_path in sorted(LOCALE.glob("*/LC_MESSAGES/django.po")):
    polib.pofile(str(po_path)).save_as_mofile(str(po_path.with_suffix(".mo")))
    print(f"compiled {po_path.relative_to(LOCALE.parent)}")
