"""Streaming CSV export of the registry: flat memory whatever the size, opens in Excel in the
user's language, and no cell can run as a formula."""

import csv
import io

from asgiref.sync import sync_to_async
from django.db import connection
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import formats, timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext, pgettext_lazy

from consulta.accounts.models import StaffMember
from consulta.audit.services import audit_record
from consulta.patients.access import patients_in_tab, patients_visible_to
from consulta.patients.export_copy import copy_batches
from consulta.patients.identifiers import national_id_label
from consulta.patients.models import Patient

State = Patient.State
EXPORT_FILTERS = {
    "all": gettext_lazy("All patients"),
    "ssn": gettext_lazy("National health service (active and temporary)"),
    "group": gettext_lazy("Group practice"),
    "deceased": gettext_lazy("National health service, deceased"),
    "revoked": gettext_lazy("National health service, revoked"),
    "private": gettext_lazy("Private"),
    "archived": gettext_lazy("Archive"),
}
# The file's name says what it holds in the user's language: "pazienti-archivio-2026-11-22.csv".
FILE_NAME_WORDS = {
    "all": pgettext_lazy("export file name", "all"),
    "ssn": pgettext_lazy("export file name", "national-health-service"),
    "group": pgettext_lazy("export file name", "group-practice"),
    "deceased": pgettext_lazy("export file name", "deceased"),
    "revoked": pgettext_lazy("export file name", "revoked"),
    "private": pgettext_lazy("export file name", "private"),
    "archived": pgettext_lazy("export file name", "archive"),
}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_CHUNK = 2000


def export_queryset(staff: StaffMember, selection: str) -> QuerySet[Patient]:
    """The export's filters are the registry's tabs, plus deceased and revoked."""
    if selection == "ssn":  # a doctor's own list; for secretaries, their teams' patients
        if staff.is_doctor:
            return patients_in_tab(staff, "mine")
        return patients_visible_to(staff).filter(
            archived_at__isnull=True, state__in=Patient.ACTIVE_SSN_STATES
        )
    if selection in ("group", "private"):
        return patients_in_tab(staff, selection)
    if selection == "archived":
        return patients_in_tab(staff, "archive")
    qs = patients_visible_to(staff)
    if selection == "deceased":
        return qs.filter(state=State.SSN_DECEASED)
    if selection == "revoked":
        return qs.filter(state=State.SSN_REVOKED)
    return qs


def neutralize(value) -> str:
    """A cell that a spreadsheet would read as a formula gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def export_header(country: str) -> list[str]:
    return [
        _("Last name"),
        _("First name"),
        national_id_label(country),
        _("Date of birth"),
        _("Email"),
        _("Mobile phone"),
        _("State"),
        _("Associated doctor"),
        _("Archived on"),
        _("Reason for archiving"),
    ]


def export_rows(staff: StaffMember, selection: str):
    """One list of strings per patient, read in chunks from the database."""
    # Translated once here: str() of a lazy label runs gettext, and this loop runs per patient.
    states = {value: str(label) for value, label in State.choices}
    reasons = {value: str(label) for value, label in Patient.ArchiveReason.choices}
    rows = (
        export_queryset(staff, selection)
        .order_by("last_name", "first_name", "pk")
        .values_list(
            "last_name",
            "first_name",
            "national_id",
            "date_of_birth",
            "email",
            "phone",
            "state",
            "doctor__user__first_name",
            "doctor__user__last_name",
            "archived_at",
            "archive_reason",
        )
        .iterator(chunk_size=_CHUNK)
    )
    for (
        last,
        first,
        national_id,
        born,
        email,
        phone,
        state,
        doc_first,
        doc_last,
        archived,
        reason,
    ) in rows:
        yield [
            last,
            first,
            national_id,
            born.isoformat() if born else "",
            email,
            phone,
            states.get(state, state),
            f"{doc_first} {doc_last}",
            timezone.localtime(archived).date().isoformat() if archived else "",
            reasons.get(reason, "") if reason else "",
        ]


async def _async_batches(batches):
    """Under ASGI, Django reads a synchronous iterator to the end before sending anything;
    an async one is sent as it comes. Each batch is read in the database thread."""
    pull = sync_to_async(next, thread_sensitive=True)
    while (batch := await pull(batches, None)) is not None:
        yield batch


def excel_delimiter() -> str:
    """The field separator Excel expects in the active language: a semicolon where the decimal
    mark is a comma (it, fr, nb), a comma elsewhere."""
    return ";" if formats.get_format("DECIMAL_SEPARATOR") == "," else ","


def export_response(staff: StaffMember, selection: str) -> StreamingHttpResponse:
    delimiter = excel_delimiter()
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    audit_record(actor=staff.user, action="patient.export", selection=selection)

    def lines():
        yield "\ufeff"  # BOM: Excel then reads the file as UTF-8
        writer.writerow(export_header(staff.clinic.country))
        if connection.vendor == "postgresql":
            yield buffer.getvalue()
            yield from copy_batches(export_queryset(staff, selection), delimiter)
            return
        batch = []
        for row in export_rows(staff, selection):
            # neutralize(), inlined: every cell export_rows yields is already a str.
            batch.append([f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell for cell in row])
            if len(batch) >= 500:
                writer.writerows(batch)
                batch.clear()
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        writer.writerows(batch)
        yield buffer.getvalue()

    patients = pgettext("export file name", "patients")
    filename = f"{patients}-{FILE_NAME_WORDS[selection]}-{timezone.localdate().isoformat()}.csv"
    response = StreamingHttpResponse(
        _async_batches(lines()), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response
