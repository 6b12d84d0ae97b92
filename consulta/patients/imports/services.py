"""Starting, confirming and applying patient imports. The analysis and the application run
in the worker; the application re-checks every row and writes in one transaction, so an
import is applied whole or not at all. On PostgreSQL the application is one pass: each row is
checked, sorted and, when new, sent to the server with the next few thousand (COPY), so the
server stores and indexes the rows while Python checks the next ones."""

import csv
import io
import logging
import queue
import threading
from itertools import islice

from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from psycopg.pq import TransactionStatus

from consulta.accounts.models import StaffMember, User
from consulta.audit.services import audit_each_patient, audit_record
from consulta.lib.errors import DomainError
from consulta.patients.access import visible_doctor_ids
from consulta.patients.export import excel_delimiter, neutralize
from consulta.patients.identifiers import national_id_label
from consulta.patients.imports.formats import FORMATS
from consulta.patients.imports.plan import Plan, Sorter, iter_checked, make_plan
from consulta.patients.imports.reader import UnreadableFile, read_rows
from consulta.patients.models import Patient, PatientImport
from consulta.patients.services import set_sign_in_address

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
    benchmarks. Same reading, checks and writing as the pages' background tasks, but the file
    is handed over in memory and never stored (the pages store it between the upload and the
    worker). A dry run is the analysis alone; otherwise straight to the apply, which checks
    every row once (no preview to confirm) and records the same preview as the analysis
    would have."""
    job = _open(
        doctor=doctor,
        created_by=actor,
        filename=filename,
        content=content,
        format=format,
        archive_missing=archive_missing,
        store_content=False,
    )
    if dry_run:
        job = patient_import_analyse(job_id=job.pk, content=content)
        return _cancel(job) if job.status == Status.PREVIEW else job
    PatientImport.objects.filter(pk=job.pk).update(status=Status.APPLYING, processed=0)
    return patient_import_apply(job_id=job.pk, actor=actor, record_preview=True, content=content)


def _open(
    *,
    doctor: StaffMember,
    created_by: User | None,
    filename: str,
    content: bytes,
    format: str,
    archive_missing: bool,
    store_content: bool = True,
) -> PatientImport:
    """Refuse a file that cannot be read at all (size, type, header), else record the job
    (with the file, for the worker, when store_content)."""
    fmt = FORMATS.get(format)
    if fmt is None:
        raise DomainError(_("Unknown import format."), code="format")
    # Checks the size and reads the header.
    read_rows(content, filename, fmt, country=doctor.clinic.country)
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
                content=content if store_content else b"",
                language=translation.get_language() or "",
            )
    except IntegrityError:
        raise _busy() from None


def _busy() -> DomainError:
    return DomainError(
        _("Another import for this doctor is running. Wait until it has finished."), code="busy"
    )


def patient_import_analyse(*, job_id, content: bytes | None = None) -> PatientImport:
    """Build the preview: counts, samples and the error report. Writes no patient. content:
    the file, when it was not stored with the job (patient_import_run)."""
    job = _job(job_id, content)
    with translation.override(job.language or None):
        try:
            plan = _plan(job, keep_new=False)
        except UnreadableFile as refusal:
            return _fail(job, str(refusal.message))
        job.status = Status.PREVIEW
        job.summary = plan.summary()
        job.preview = _preview(plan)
        job.errors_csv = _errors_csv(plan, job.clinic.country)
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
    *,
    job_id,
    actor: User | None = None,
    record_preview: bool = False,
    content: bytes | None = None,
) -> PatientImport:
    """Check every row again and compare it with the registry again (it may have changed
    since the preview), and write all of it in one transaction. record_preview: also store
    the preview; content: the file, when it was not stored with the job (both for
    patient_import_run, which skips the analysis)."""
    job = _job(job_id, content)
    with translation.override(job.language or None):
        try:
            if connection.vendor == "postgresql":
                plan = _apply_streamed(job, actor)
            else:
                plan = _plan(job, keep_new=True)
                with transaction.atomic():
                    _write(plan, job)
                    _audit(job, actor, plan)
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
        except Exception:
            # Whatever went wrong, the transaction was rolled back: say so, and free the
            # doctor's next import (a job left "applying" would block it).
            log.exception("import %s failed", job.pk)
            _fail(
                job,
                _(
                    "The import stopped because of an unexpected error. Nothing was imported: "
                    "try again, and tell the clinic's administrator if it happens again."
                ),
            )
            raise
        job.status = Status.APPLIED
        job.total = plan.rows()
        job.summary = plan.summary()
        job.errors_csv = _errors_csv(plan, job.clinic.country)
        job.content = b""  # the file was patient data; keep only the outcome
        job.finished_at = timezone.now()
        fields = ["status", "total", "summary", "errors_csv", "content", "finished_at"]
        if record_preview:
            job.preview = _preview(plan)
            fields.append("preview")
        job.save(update_fields=fields)
    log.info("import %s applied: %s", job.pk, job.summary)
    return job


def _job(job_id, content: bytes | None) -> PatientImport:
    """The job, with the file it was stored with, or with `content` (not read back)."""
    jobs = PatientImport.objects.select_related("clinic", "doctor")
    if content is None:
        return jobs.get(pk=job_id)
    job = jobs.defer("content").get(pk=job_id)
    job.content = content  # in memory only: every save names its fields
    return job


def _audit(job: PatientImport, actor: User | None, plan: Plan) -> None:
    """The import's own row, with its counts; and a row on each patient it changed or
    archived, so that their record's trail shows it (new patients are the import's rows)."""
    actor = actor or job.created_by
    audit_record(actor=actor, action="patient.import", target=job, **plan.summary())
    imported = str(job.pk)
    audit_each_patient(
        actor=actor,
        action="patient.import_update",
        details=(
            (pk, {"fields": sorted(changes), "import": imported}) for pk, changes in plan.updates
        ),
    )
    audit_each_patient(
        actor=actor,
        action="patient.archive",
        details=(
            (pk, {"reason": Patient.ArchiveReason.SSN_REVOKED, "import": imported})
            for pk in plan.to_archive
        ),
    )


def _rows(job: PatientImport) -> list:
    """Read the stored file; record how many rows it has, for the progress bar."""
    fields, rows = read_rows(bytes(job.content), job.filename, FORMATS[job.format])
    rows = list(rows)  # known length for the progress bar; rows are small
    PatientImport.objects.filter(pk=job.pk).update(total=len(rows), processed=0)
    return rows


def _plan(job: PatientImport, *, keep_new: bool) -> Plan:
    """Read the stored file, check every row (the slow part, with progress) and sort it
    against the registry. keep_new: keep the new patients (to write them), not only count
    them (for the preview)."""
    return make_plan(
        clinic_id=job.clinic_id,
        country=job.clinic.country,
        doctor_id=job.doctor_id,
        fmt=FORMATS[job.format],
        archive_missing=job.archive_missing,
        checked=iter_checked(
            job.clinic.country,
            FORMATS[job.format],
            _rows(job),
            progress=lambda n: PatientImport.objects.filter(pk=job.pk).update(processed=n),
        ),
        keep_new=keep_new,
    )


def _apply_streamed(job: PatientImport, actor: User | None) -> Plan:
    """PostgreSQL: check, sort and write in one pass, in one transaction. The registry is
    read first; then the rows found new go to the server by thousands, with COPY, and the
    server stores and indexes them while Python checks the next rows. The updates, archives
    and the audit row follow. Same outcome as make_plan() then _write()."""
    fmt = FORMATS[job.format]
    # Not counted first, so that the server gets the first rows at once: the analysis has
    # counted them for the progress bar, and an import run at once has no page to show it.
    _, rows = read_rows(bytes(job.content), job.filename, fmt)
    now = timezone.now()
    progress = _Progress(job)
    try:
        with transaction.atomic():
            sorter = Sorter(
                clinic_id=job.clinic_id,
                country=job.clinic.country,
                doctor_id=job.doctor_id,
                fmt=fmt,
                archive_missing=job.archive_missing,
                keep_new=False,
            )
            add = sorter.add
            # The psycopg cursor bypasses Django's error translation: without it, a
            # unique violation in a COPY would not be an IntegrityError.
            with connection.wrap_database_errors, _CopyWriter(*_copy_sql()) as writer:
                for result in iter_checked(job.clinic.country, fmt, rows, progress):
                    if add(result):
                        writer.add(_new_patient_values(result, job, now))
            progress.flush()
            plan = sorter.finish()
            _write_changes(plan, now)
            _audit(job, actor, plan)
    finally:
        progress.close()
    return plan


class _CopyWriter:
    """The new patients, sent to the server in COPY statements of CHUNK rows by a thread of
    its own, on the transaction's connection, while the calling thread checks the next rows
    (and uses no connection meanwhile). The foreign keys are checked at the end of each
    chunk, while the next one is being checked, rather than all at COMMIT with nothing else
    left to do: that took 0.7 s for 100,000 patients. An error of the server is raised in the
    calling thread, at the next chunk or at the end. When the calling thread fails (or is
    interrupted), the thread drops what is left, abandons a COPY under way and is waited
    for: nothing is written on the connection after the caller has rolled back."""

    # The last chunk is sent once every row is checked, with nothing left to overlap it:
    # 5,000 rows kept the import waiting a fifth of a second at the end.
    CHUNK = 2000
    CHECK_EVERY = 500  # rows of a COPY between two looks at `stop`

    def __init__(self, sql: str, types: list[str]):
        self.sql = sql
        self.types = types
        self.chunk: list[tuple] = []
        self.chunks: queue.Queue[list[tuple] | None] = queue.Queue(maxsize=2)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._send, name="import-copy", daemon=True)

    def __enter__(self):
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        self.raw = connection.connection
        self.thread.start()
        return self

    def add(self, row: tuple) -> None:
        self.chunk.append(row)
        if len(self.chunk) >= self.CHUNK:
            if self.error is not None:
                raise self.error
            self.chunks.put(self.chunk)
            self.chunk = []

    def _send(self) -> None:
        while (chunk := self.chunks.get()) is not None:
            if self.error is not None or self.stop.is_set():
                continue  # emptied to the end, so that the calling thread never waits
            try:
                if self.raw.info.transaction_status != TransactionStatus.INTRANS:
                    raise DatabaseError("the import's transaction is no longer open")
                with self.raw.cursor() as cursor, cursor.copy(self.sql) as copy:
                    copy.set_types(self.types)
                    for start in range(0, len(chunk), self.CHECK_EVERY):
                        if self.stop.is_set():
                            raise _Abandoned  # psycopg ends the COPY with an error
                        for row in chunk[start : start + self.CHECK_EVERY]:
                            copy.write_row(row)
            except BaseException as error:  # noqa: BLE001 - raised in the calling thread
                self.error = error

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.stop.set()
        interrupted = None
        last = [self.chunk] if exc_type is None and self.chunk else []
        for item in (*last, None):
            while True:  # a second Ctrl-C here must not leave the thread writing
                try:
                    self.chunks.put(item)
                    break
                except BaseException as error:  # noqa: BLE001 - raised below
                    self.stop.set()
                    interrupted = interrupted or error
        while self.thread.is_alive():
            try:
                self.thread.join()
            except BaseException as error:  # noqa: BLE001 - raised below
                self.stop.set()
                interrupted = interrupted or error
        if interrupted is not None:
            raise interrupted
        if exc_type is not None:
            return False
        if self.error is not None:
            raise self.error
        # Django's foreign keys are all DEFERRABLE INITIALLY DEFERRED: as they were.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        return False


class _Abandoned(Exception):
    """The calling thread failed: the COPY under way is given up."""


class _Progress:
    """The rows checked so far, for the page's progress bar, while the apply runs inside its
    transaction. An UPDATE of the job on the import's own connection would stay invisible
    until the commit (and cannot be sent during the COPY): when the import is not nested in
    an outer transaction, the count goes through a second connection, in autocommit, and
    skips the update rather than wait if the job's row is locked. Nested (tests), the last
    count is written by flush() after the COPY, as part of the transaction."""

    def __init__(self, job: PatientImport):
        self.job_id = job.pk
        self.pending: int | None = None
        self.side = None
        if not connection.in_atomic_block:
            main = connections[connection.alias]  # the wrapper behind the proxy
            self.side = type(main)(main.settings_dict, main.alias)
            table = connection.ops.quote_name(PatientImport._meta.db_table)
            pk = connection.ops.quote_name(PatientImport._meta.pk.column)
            processed = connection.ops.quote_name(PatientImport._meta.get_field("processed").column)
            self.sql = (
                f"UPDATE {table} SET {processed} = %s WHERE {pk} = ("  # noqa: S608 - model names
                f"SELECT {pk} FROM {table} WHERE {pk} = %s FOR NO KEY UPDATE SKIP LOCKED)"
            )

    def __call__(self, done: int) -> None:
        if self.side is None:
            self.pending = done
            return
        try:
            with self.side.cursor() as cursor:
                cursor.execute(self.sql, [done, self.job_id])
        except DatabaseError:
            log.warning("import %s: progress not recorded", self.job_id, exc_info=True)
            self.close()
            self.pending = done

    def flush(self) -> None:
        if self.pending is not None:
            PatientImport.objects.filter(pk=self.job_id).update(processed=self.pending)
            self.pending = None

    def close(self) -> None:
        if self.side is not None:
            side, self.side = self.side, None
            side.close()


def _write(plan: Plan, job: PatientImport) -> None:
    """SQLite: the new patients in batches, then the changes."""
    now = timezone.now()
    _bulk_create_new(plan, job, now)
    _write_changes(plan, now)


def _write_changes(plan: Plan, now) -> None:
    """The updates and the archives."""
    by_fields: dict[tuple, list[Patient]] = {}
    for pk, changes in plan.updates:
        by_fields.setdefault(tuple(sorted(changes)), []).append(
            Patient(pk=pk, updated_at=now, **changes)
        )
    for fields, patients in by_fields.items():
        Patient.objects.bulk_update(patients, [*fields, "updated_at"], batch_size=BATCH)
    for user_id, email in plan.sign_in_moves:
        set_sign_in_address(user_id, email)
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


def _copy_sql() -> tuple[str, list[str]]:
    """PostgreSQL's COPY: an order of magnitude faster than INSERTs for large lists. The
    columns are _NEW_PATIENT_FIELDS, in that order, sent in the binary format: with the
    columns' types told to psycopg beforehand, it writes each value in a few bytes without
    looking up how to (the text format's escaping and conversions took a tenth of an
    import's time, in the thread that holds the lock the checking needs). The types are the
    table's own, read from the catalog, so that the binary values are exactly what the
    server expects."""
    table = connection.ops.quote_name(Patient._meta.db_table)
    columns = [Patient._meta.get_field(f).column for f in _NEW_PATIENT_FIELDS]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attname = ANY(%s)",
            [Patient._meta.db_table, columns],
        )
        types = dict(cursor.fetchall())
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    sql = f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)"  # noqa: S608 - the model's
    return sql, [types[c] for c in columns]


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


def _preview(plan: Plan) -> dict:
    return {
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


def _errors_csv(plan: Plan, country: str) -> str:
    if not plan.invalid:
        return ""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=excel_delimiter(), lineterminator="\r\n")
    writer.writerow(
        [
            _("Line"),
            national_id_label(country),
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
