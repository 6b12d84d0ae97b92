"""Starting, confirming and applying patient imports. The analysis and the application run
in the worker; the application re-checks every row and writes in one transaction, so an
import is applied whole or not at all."""

import csv
import io
import logging
from itertools import islice

from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from consulta.accounts.models import StaffMember, User
from consulta.audit.services import audit_record
from consulta.lib.errors import DomainError
from consulta.patients.access import visible_doctor_ids
from consulta.patients.export import neutralize
from consulta.patients.imports.formats import FORMATS
from consulta.patients.imports.plan import Plan, check_rows, make_plan
from consulta.patients.imports.reader import UnreadableFile, read_rows
from consulta.patients.models import Patient, PatientImport

log = logging.getLogger(__name__)
Status = PatientImport.Status
BATCH = 2000


def patient_import_start(
    *,
    by: StaffMember,
    doctor: StaffMember,
    filename: str,
    content: bytes,
    format: str,
    archive_missing: bool = False,
) -> PatientImport:
    """Check that the file can be read at all, then queue its analysis."""
    if not by.works_in_registry:
        raise DomainError(_("You are not allowed to import patients."), code="forbidden")
    if not doctor.is_doctor or doctor.pk not in visible_doctor_ids(by):
        raise DomainError(_("Choose one of the doctors you work with."), code="forbidden")
    job = _open(
        doctor=doctor,
        created_by=by.user,
        filename=filename,
        content=content,
        format=format,
        archive_missing=archive_missing,
    )
    audit_record(actor=by.user, action="patient.import_start", target=job, filename=filename)
    from consulta.patients.tasks import analyse_import

    transaction.on_commit(lambda: analyse_import.enqueue(str(job.pk)))
    return job


def patient_import_run(
    *,
    doctor: StaffMember,
    filename: str,
    content: bytes,
    format: str,
    archive_missing: bool = False,
    dry_run: bool = False,
    actor: User | None = None,
) -> PatientImport:
    """The whole import at once, in this process: for operators on the command line and for
    benchmarks. Same reading, checks and writing as the pages' background tasks."""
    job = _open(
        doctor=doctor,
        created_by=actor,
        filename=filename,
        content=content,
        format=format,
        archive_missing=archive_missing,
    )
    job.clinic = doctor.clinic
    try:
        checked = _check(job)  # once: the file does not change between preview and apply
    except UnreadableFile as refusal:
        return _fail(job, str(refusal.message))
    job = patient_import_analyse(job_id=job.pk, checked=checked)
    if job.status != Status.PREVIEW:
        return job
    if dry_run:
        return _cancel(job)
    PatientImport.objects.filter(pk=job.pk).update(status=Status.APPLYING, processed=0)
    return patient_import_apply(job_id=job.pk, actor=actor, checked=checked)


def _open(
    *,
    doctor: StaffMember,
    created_by: User | None,
    filename: str,
    content: bytes,
    format: str,
    archive_missing: bool,
) -> PatientImport:
    """Refuse a file that cannot be read at all (size, type, header), else record the job."""
    fmt = FORMATS.get(format)
    if fmt is None:
        raise DomainError(_("Unknown import format."), code="format")
    read_rows(content, filename, fmt)  # checks the size and reads the header
    try:
        with transaction.atomic():
            return PatientImport.objects.create(
                status=Status.ANALYSING,
                clinic_id=doctor.clinic_id,
                doctor=doctor,
                created_by=created_by,
                format=format,
                archive_missing=archive_missing and fmt.regional,
                filename=filename[:255],
                content=content,
                language=translation.get_language() or "",
            )
    except IntegrityError:
        raise _busy() from None


def _busy() -> DomainError:
    return DomainError(
        _("Another import for this doctor is running. Wait until it has finished."), code="busy"
    )


def patient_import_analyse(*, job_id, checked: list | None = None) -> PatientImport:
    """Build the preview: counts, samples and the error report. Writes no patient."""
    job = PatientImport.objects.select_related("clinic").get(pk=job_id)
    with translation.override(job.language or None):
        try:
            plan = _plan(job, checked)
        except UnreadableFile as refusal:
            return _fail(job, str(refusal.message))
        job.status = Status.PREVIEW
        job.summary = plan.summary()
        job.preview = {
            **plan.samples,
            "invalid": [
                {
                    "line": r.line,
                    "reason": r.reason,
                    "national_id": r.values.get("national_id", ""),
                    "name": f"{r.values.get('last_name', '')} {r.values.get('first_name', '')}",
                }
                for r in plan.invalid[:20]
            ],
        }
        job.errors_csv = _errors_csv(plan)
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "summary", "preview", "errors_csv", "finished_at"])
    return job


def patient_import_confirm(*, by: StaffMember, job: PatientImport) -> PatientImport:
    _require_owner_side(by, job)
    if job.status != Status.PREVIEW:
        raise DomainError(_("This import cannot be confirmed any more."), code="state")
    try:
        with transaction.atomic():
            updated = PatientImport.objects.filter(pk=job.pk, status=Status.PREVIEW).update(
                status=Status.APPLYING, processed=0
            )
    except IntegrityError:
        raise _busy() from None
    if not updated:
        raise DomainError(_("This import cannot be confirmed any more."), code="state")
    from consulta.patients.tasks import apply_import

    transaction.on_commit(lambda: apply_import.enqueue(str(job.pk)))
    job.refresh_from_db()
    return job


def patient_import_cancel(*, by: StaffMember, job: PatientImport) -> PatientImport:
    _require_owner_side(by, job)
    if job.status != Status.PREVIEW:
        raise DomainError(
            _("Only an import waiting for confirmation can be cancelled."), code="state"
        )
    return _cancel(job)


def _cancel(job: PatientImport) -> PatientImport:
    job.status = Status.CANCELLED
    job.content = b""  # the file was patient data; nothing will be done with it
    job.save(update_fields=["status", "content"])
    return job


def patient_import_apply(
    *, job_id, actor: User | None = None, checked: list | None = None
) -> PatientImport:
    """Compare every row with the registry again (it may have changed since the preview)
    and write all of it in one transaction."""
    job = PatientImport.objects.select_related("clinic", "doctor").get(pk=job_id)
    with translation.override(job.language or None):
        try:
            plan = _plan(job, checked)
            with transaction.atomic():
                _write(plan, job)
                audit_record(
                    actor=actor or job.created_by,
                    action="patient.import",
                    target=job,
                    **plan.summary(),
                )
        except UnreadableFile as refusal:
            return _fail(job, str(refusal.message))
        except IntegrityError:
            log.exception("import %s could not be applied", job.pk)
            return _fail(
                job,
                _(
                    "The registry changed while the import ran (a patient was "
                    "added with the same national identifier). Nothing was "
                    "imported: run the import again."
                ),
            )
        job.status = Status.APPLIED
        job.summary = plan.summary()
        job.errors_csv = _errors_csv(plan)
        job.content = b""  # the file was patient data; keep only the outcome
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "summary", "errors_csv", "content", "finished_at"])
    log.info("import %s applied: %s", job.pk, job.summary)
    return job


def _check(job: PatientImport) -> list:
    """Read the stored file and check every row on its own (the slow part)."""
    fmt = FORMATS[job.format]
    fields, rows = read_rows(bytes(job.content), job.filename, fmt)
    rows = list(rows)  # known length for the progress bar; rows are small
    PatientImport.objects.filter(pk=job.pk).update(total=len(rows), processed=0)
    return check_rows(
        job.clinic.country,
        fmt,
        rows,
        progress=lambda n: PatientImport.objects.filter(pk=job.pk).update(processed=n),
    )


def _plan(job: PatientImport, checked: list | None = None) -> Plan:
    """Compare the checked rows with the registry as it is now."""
    return make_plan(
        clinic_id=job.clinic_id,
        country=job.clinic.country,
        doctor_id=job.doctor_id,
        fmt=FORMATS[job.format],
        archive_missing=job.archive_missing,
        checked=_check(job) if checked is None else checked,
    )


def _write(plan: Plan, job: PatientImport) -> None:
    now = timezone.now()
    if connection.vendor == "postgresql":
        _copy_new(plan, job, now)
    else:
        _bulk_create_new(plan, job, now)
    by_fields: dict[tuple, list[Patient]] = {}
    for pk, changes in plan.updates:
        by_fields.setdefault(tuple(sorted(changes)), []).append(
            Patient(pk=pk, updated_at=now, **changes)
        )
    for fields, patients in by_fields.items():
        Patient.objects.bulk_update(patients, [*fields, "updated_at"], batch_size=BATCH)
    for start in range(0, len(plan.to_archive), BATCH):
        Patient.objects.filter(pk__in=plan.to_archive[start : start + BATCH]).update(
            archived_at=now,
            archive_reason=Patient.ArchiveReason.SSN_REVOKED,
            state=Patient.State.SSN_REVOKED,
            updated_at=now,
        )


# Every column a new patient gets; the others are NULL (user, archived_at, invited_at).
_NEW_PATIENT_FIELDS = (
    "clinic",
    "doctor",
    "first_name",
    "last_name",
    "national_id",
    "email",
    "phone",
    "state",
    "date_of_birth",
    "archive_reason",
    "archive_note",
    "created_at",
    "updated_at",
)


_ATTNAMES = tuple(Patient._meta.get_field(f).attname for f in _NEW_PATIENT_FIELDS)


def _new_patient_values(c, job: PatientImport, now) -> tuple:
    return (
        job.clinic_id,
        job.doctor_id,
        c.first_name,
        c.last_name,
        c.national_id,
        c.email,
        c.phone,
        c.state or Patient.State.SSN,
        c.date_of_birth,
        "",
        "",
        now,
        now,
    )


def _copy_new(plan: Plan, job: PatientImport, now) -> None:
    """PostgreSQL's COPY: an order of magnitude faster than INSERTs for large lists."""
    table = connection.ops.quote_name(Patient._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(Patient._meta.get_field(f).column) for f in _NEW_PATIENT_FIELDS
    )
    sql = f"COPY {table} ({columns}) FROM STDIN"  # noqa: S608 - names from the model
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for candidate in plan.new:
            copy.write_row(_new_patient_values(candidate, job, now))


def _bulk_create_new(plan: Plan, job: PatientImport, now) -> None:
    new = iter(plan.new)
    while batch := list(islice(new, BATCH)):
        Patient.objects.bulk_create(
            [
                Patient(**dict(zip(_ATTNAMES, _new_patient_values(c, job, now), strict=True)))
                for c in batch
            ]
        )


def _fail(job: PatientImport, message: str) -> PatientImport:
    job.status = Status.FAILED
    job.failure = message
    job.content = b""  # patient data with nothing left to do: not kept
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "failure", "content", "finished_at"])
    return job


def _errors_csv(plan: Plan) -> str:
    if not plan.invalid:
        return ""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            _("Line"),
            _("National identifier"),
            _("Last name"),
            _("First name"),
            _("Email"),
            _("Mobile phone"),
            _("Reason"),
        ]
    )
    for row in plan.invalid:
        v = row.values
        writer.writerow(
            [
                neutralize(x)
                for x in (
                    row.line,
                    v.get("national_id", ""),
                    v.get("last_name", ""),
                    v.get("first_name", ""),
                    v.get("email", ""),
                    v.get("phone", ""),
                    row.reason,
                )
            ]
        )
    return out.getvalue()


def _require_owner_side(by: StaffMember, job: PatientImport) -> None:
    if job.clinic_id != by.clinic_id or job.doctor_id not in visible_doctor_ids(by):
        raise DomainError(_("You do not have access to this import."), code="forbidden")
