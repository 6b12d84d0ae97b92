"""Reading an uploaded CSV or XLSX into rows of text, with clear refusals for what can't be
read at all."""

import csv
import io
from collections.abc import Iterator
from itertools import chain

from django.utils.translation import gettext as _

from consulta.lib.errors import DomainError
from consulta.patients.export import FORMULA_STARTS
from consulta.patients.identifiers import national_id_name
from consulta.patients.imports.formats import ImportFormat, normalize_header

MAX_BYTES = 20 * 1024 * 1024
_XLSX_MAGIC = b"PK\x03\x04"


class UnreadableFile(DomainError):
    pass


def check_size(size: int) -> None:
    if size == 0:
        raise UnreadableFile(_("The file is empty."), code="empty")
    if size > MAX_BYTES:
        raise UnreadableFile(
            _("The file is larger than %(mb)d MB. Split it into smaller files.")
            % {"mb": MAX_BYTES // (1024 * 1024)},
            code="too_large",
        )


def _decode(content: bytes, encoding: str | None) -> str:
    if content.startswith(b"\xef\xbb\xbf"):
        try:
            return content[3:].decode("utf-8")
        except UnicodeDecodeError as error:
            # Marked as UTF-8, but part of it was saved in another encoding: guessing which
            # would garble the names of one part or the other.
            line = content[3 : 3 + error.start].count(b"\n") + 1
            raise UnreadableFile(
                _(
                    "The file is marked as UTF-8, but line %(line)d is in another encoding. "
                    "Save it again as CSV UTF-8."
                )
                % {"line": line},
                code="encoding",
            ) from None
    if encoding is None:
        try:
            return content.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "cp1252"  # Excel's "CSV" on Windows in western Europe
    try:
        return content.decode(encoding)
    except UnicodeDecodeError:
        return content.decode("latin-1")  # cp1252 leaves five bytes undefined


def _text_rows(content: bytes, fmt: ImportFormat) -> Iterator[list[str]]:
    if b"\x00" in content[:4096]:
        raise UnreadableFile(
            _("This file is not a CSV or XLSX file. Save it as CSV (UTF-8) or XLSX."),
            code="binary",
        )
    text = _decode(content, fmt.encoding)
    delimiter = fmt.delimiter or _guess_delimiter(text)
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def _guess_delimiter(text: str) -> str:
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        return max(",;\t|", key=first.count)


def _xlsx_rows(content: bytes) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - any failure here means "not a workbook we can read"
        raise UnreadableFile(
            _(
                "This XLSX file cannot be opened. Save it again from your "
                "spreadsheet program, or as CSV."
            ),
            code="bad_xlsx",
        ) from None

    def rows():
        try:
            for values in workbook.active.iter_rows(values_only=True):
                yield [_cell_text(value) for value in values]
        finally:
            workbook.close()

    return rows()


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # phone numbers typed as numbers
    if hasattr(value, "date") and callable(value.date):
        return value.date().isoformat()
    return str(value)


def _unguarded(text: str) -> str:
    """The export writes "'" before a cell that a spreadsheet would run as a formula
    ("'+39…", "'=…": consulta.patients.export.neutralize); it is not part of the value."""
    if text[:1] == "'" and text[1:].startswith(FORMULA_STARTS):
        return text[1:].strip()
    return text


def read_rows(content: bytes, filename: str, fmt: ImportFormat, country: str | None = None):
    """Return (fields, rows): the field of each column, and an iterator of
    (line number, {field: text}) for every non-empty data row. `country` names the national
    identifier in the message about missing columns."""
    check_size(len(content))
    is_xlsx = content.startswith(_XLSX_MAGIC) or filename.lower().endswith(".xlsx")
    raw = _xlsx_rows(content) if is_xlsx else _text_rows(content, fmt)
    header = next(raw, None)
    if not header or not any(cell.strip() for cell in header):
        raise UnreadableFile(_("The file has no header row."), code="no_header")
    fields = _map_header(header, fmt, country)
    items = tuple(fields.items())
    width = max(fields, default=-1) + 1  # a row this long has every mapped column

    def rows():
        for line, values in enumerate(raw, start=2):
            joined = "".join(values)
            if not joined.strip():  # nothing but blanks
                continue
            if len(values) >= width:
                row = {f: values[i].strip() for i, f in items}
            else:
                row = {f: values[i].strip() for i, f in items if i < len(values)}
            if "'" in joined:  # rare: looked at cell by cell only then
                row = {f: _unguarded(text) for f, text in row.items()}
            yield line, row

    data = rows()
    first = next(data, None)
    if first is None:
        # Refused rather than previewed as nothing: a regional file cut short would otherwise
        # offer to archive every patient it no longer lists.
        raise UnreadableFile(
            _("The file has only its header row: there are no patients in it."), code="no_rows"
        )
    return fields, chain((first,), data)


def _map_header(header: list[str], fmt: ImportFormat, country: str | None = None) -> dict[int, str]:
    lookup = {name: field for field, names in fmt.columns.items() for name in names}
    fields: dict[int, str] = {}
    for index, cell in enumerate(header):
        field = lookup.get(normalize_header(cell))
        if field and field not in fields.values():
            fields[index] = field
    missing = [f for f in fmt.required if f not in fields.values()]
    if missing:
        names = ", ".join(_column_name(fmt, f, country) for f in missing)
        raise UnreadableFile(
            _("The file has no column for: %(columns)s. The first row must name the columns.")
            % {"columns": names},
            code="missing_columns",
        )
    return fields


def _column_name(fmt: ImportFormat, field: str, country: str | None) -> str:
    """A missing column as the message names it: a regional file's own heading (the region's
    system writes it); for a list, the column as the user calls it, in their language."""
    if fmt.regional:
        return fmt.columns[field][0]
    names = {
        "national_id": national_id_name(country),
        "first_name": _("first name"),
        "last_name": _("last name"),
    }
    return names.get(field, fmt.columns[field][0])
