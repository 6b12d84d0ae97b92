from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from consulta.accounts.models import StaffMember
from consulta.lib.errors import DomainError
from consulta.patients.imports.services import patient_import_run
from consulta.patients.models import PatientImport


class Command(BaseCommand):
    help = (
        "Import a patient list (CSV/XLSX) or a regional export for one doctor, with the "
        "same checks as the import page. Prints created=N updated=N unchanged=N "
        "archived=N invalid=N."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--clinic", type=int, required=True, help="clinic id")
        parser.add_argument("--doctor", required=True, help="the doctor's email")
        parser.add_argument("--format", choices=["list", "siss"], default="list")
        parser.add_argument(
            "--archive-missing",
            action="store_true",
            help="regional formats: archive the doctor's patients not listed",
        )
        parser.add_argument("--dry-run", action="store_true", help="check only, change nothing")
        parser.add_argument("--errors", help="write the invalid rows to this CSV file")

    def handle(
        self, *args, file, clinic, doctor, format, archive_missing, dry_run, errors, **options
    ):
        member = (
            StaffMember.objects.filter(
                clinic_id=clinic, user__email__iexact=doctor, role=StaffMember.Role.DOCTOR
            )
            .select_related("clinic")
            .first()
        )
        if member is None:
            raise CommandError(f"No doctor {doctor} in clinic {clinic}.")
        path = Path(file)
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from None
        try:
            job = patient_import_run(
                doctor=member,
                filename=path.name,
                content=content,
                format=format,
                archive_missing=archive_missing,
                dry_run=dry_run,
            )
        except DomainError as refusal:
            raise CommandError(str(refusal.message)) from None
        if job.status == PatientImport.Status.FAILED:
            raise CommandError(job.failure)
        if errors and job.errors_csv:
            Path(errors).write_text("\ufeff" + job.errors_csv, encoding="utf-8")
        s = job.summary
        line = (
            f"created={s['new']} updated={s['updated']} unchanged={s['unchanged']} "
            f"archived={s['archived']} invalid={s['invalid']}"
        )
        self.stdout.write(line + (" (dry run: nothing changed)" if dry_run else ""))
