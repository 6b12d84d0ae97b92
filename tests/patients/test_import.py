"""Imports: reading every kind of file, the preview, the one-transaction apply, SISS."""

import io
import subprocess
import sys
import threading
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import translation
from stdnum.it import codicefiscale

from consulta.accounts.models import CareTeam
from consulta.audit.models import AuditEvent
from consulta.lib.errors import DomainError
from consulta.patients.imports import plan, reader, services
from consulta.patients.imports.formats import FORMATS
from consulta.patients.imports.services import (
    patient_import_confirm,
    patient_import_run,
    patient_import_start,
)
from consulta.patients.models import Patient, PatientImport
from tests.patients.conftest import add_patient


def cf(prefix15: str) -> str:
    return prefix15 + codicefiscale.calc_check_digit(prefix15)


MARIO = cf("RSSMRA85T10A562")
LUCIA = cf("BNCLCU90A41F205")
GINO = cf("VRDGNI70C12H501")


def csv_bytes(text: str, encoding="utf-8") -> bytes:
    return text.replace("\n", "\r\n").encode(encoding)


def run(cast, content, *, name="list.csv", format="list", **options):
    return patient_import_run(
        doctor=cast.doctor, filename=name, content=content, format=format, **options
    )


# --- reading --------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_any_delimiter_is_recognised(cast, delimiter):
    text = (
        delimiter.join(["Codice Fiscale", "Nome", "Cognome"])
        + "\n"
        + delimiter.join([MARIO, "Mario", "Rossi"])
        + "\n"
    )
    job = run(cast, csv_bytes(text))
    assert job.summary["new"] == 1
    assert Patient.objects.get(national_id=MARIO).first_name == "Mario"


def test_headers_in_any_language_and_order_with_bom(cast):
    text = "\ufeffEtternavn;E-post;Fødselsnummer;Fornavn;Mobil\nRossi;m@x.it;{};Mario;3331112222\n"
    job = run(cast, csv_bytes(text.format(MARIO)))
    patient = Patient.objects.get(national_id=MARIO)
    assert job.summary["new"] == 1
    assert (patient.last_name, patient.email, patient.phone) == ("Rossi", "m@x.it", "+393331112222")


def test_windows_1252_file_keeps_accents(cast):
    text = f"CF;Prénom;Nom\n{MARIO};Andrè;Rossì\n"
    run(cast, csv_bytes(text, "cp1252"))
    assert Patient.objects.get(national_id=MARIO).first_name == "Andrè"


def test_xlsx_file_is_read(cast):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Cognome", "Nome", "Codice fiscale", "Cellulare"])
    sheet.append(["Bianchi", "Lucia", LUCIA, 3339998888])
    buffer = io.BytesIO()
    book.save(buffer)
    job = run(cast, buffer.getvalue(), name="pazienti.xlsx")
    assert job.summary["new"] == 1
    assert Patient.objects.get(national_id=LUCIA).phone == "+393339998888"


def test_the_exports_formula_guard_is_dropped_and_other_apostrophes_kept(cast):
    text = (
        "Codice fiscale;Cognome;Nome;Email;Cellulare\n"
        f"{MARIO};D'Angelo;'t Hooft;'-mario@x.it;'+39 333 111 2222\n"
        f"{LUCIA};'=Bianchi;'\tLucia;;\n"
    )
    run(cast, csv_bytes(text))
    mario = Patient.objects.get(national_id=MARIO)
    assert (mario.last_name, mario.first_name) == ("D'Angelo", "'t Hooft")
    assert (mario.email, mario.phone) == ("-mario@x.it", "+393331112222")
    lucia = Patient.objects.get(national_id=LUCIA)
    assert (lucia.last_name, lucia.first_name) == ("=Bianchi", "Lucia")


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02binary\x00", "binary"),
        (b"Nome;Cognome\nMario;Rossi\n", "missing_columns"),
        (b"\r\n\r\n", "no_header"),
        (b"CF;Nome;Cognome\r\n", "no_rows"),
        (b"CF;Nome;Cognome\r\n;;\r\n\r\n", "no_rows"),
        (b"\xef\xbb\xbfCF;Nome;Cognome\r\nRSSMRA85T10A562S;Niccol\xf2;Rossi\r\n", "encoding"),
    ],
)
def test_unreadable_files_are_refused_and_nothing_is_stored(cast, content, code):
    with pytest.raises(DomainError) as caught:
        run(cast, content)
    assert caught.value.code == code
    assert not PatientImport.objects.exists()
    assert Patient.objects.count() == 3


def test_a_file_marked_utf8_with_another_encoding_inside_names_the_line(cast):
    content = "\ufeffCF;Nome;Cognome\nRSSMRA85T10A562S;Mario;Rossi\n".encode() + (
        "LCUBNC80A41F205Z;Lucía;Bianchi\n".encode("cp1252")
    )
    with translation.override("it"), pytest.raises(DomainError) as caught:
        run(cast, content)
    assert "riga 3" in str(caught.value.message)


def test_file_over_the_size_limit_is_refused(cast, monkeypatch):
    monkeypatch.setattr(reader, "MAX_BYTES", 10)
    with pytest.raises(DomainError) as caught:
        run(cast, csv_bytes(f"CF;Nome;Cognome\n{MARIO};Mario;Rossi\n"))
    assert caught.value.code == "too_large"


def test_short_rows_keep_their_columns_and_blank_rows_are_skipped():
    content = csv_bytes("CF;Nome;Cognome;Email\nA;B;C\n ; ;  ; \n\nD;E;F;g@h.it;more\n")
    fields, rows = reader.read_rows(content, "list.csv", FORMATS["list"])
    assert list(rows) == [
        (2, {"national_id": "A", "first_name": "B", "last_name": "C"}),
        (5, {"national_id": "D", "first_name": "E", "last_name": "F", "email": "g@h.it"}),
    ]


@pytest.mark.parametrize(
    "email",
    [
        "mario.rossi@example.it",
        "MARIO@EXAMPLE.IT",
        "a+b@sub.example.co.uk",
        "o'brien@example.ie",
        '"quoted local"@example.fr',
        "user@[192.168.0.1]",
        "user@[IPv6:::1]",
        "user@localhost",
        "bjørn@eksempel.no",
        "user@eksempel.nø",
        "user@-example.it",
        "user@example",
        "user@@example.it",
        "user.@example.it",
        "@example.it",
        "user@",
        "plain",
        "a@b.c",
        "user@" + "x" * 64 + ".it",
        "x" * 320 + "@example.it",
    ],
)
def test_the_import_checks_emails_as_django_does(email):
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    def verdict(check):
        try:
            check(email)
        except ValidationError:
            return False
        return True

    assert verdict(plan.validate_email) == verdict(validate_email)


def test_missing_columns_message_names_them(cast):
    with pytest.raises(DomainError) as caught:
        run(cast, b"Nome;Cognome\nMario;Rossi\n")
    assert "no column for: codice fiscale." in str(caught.value.message)
    with translation.override("nb"), pytest.raises(DomainError) as caught:
        run(cast, b"Codice fiscale\nRSSMRA80A01H501U\n")
    assert "fornavn, etternavn" in str(caught.value.message)


# --- checking and applying --------------------------------------------------------------


def test_preview_sorts_rows_into_new_updated_unchanged_and_invalid(cast):
    cast.patient.national_id = GINO
    cast.patient.save()
    other = Patient.objects.create(
        clinic=cast.clinic,
        doctor=cast.doctor2,
        first_name="Ada",
        last_name="Neri",
        national_id=LUCIA,
    )
    text = (
        "CF;Nome;Cognome;Email\n"
        f"{MARIO};Mario;Rossi;\n"  # new
        f"{GINO};Paolo;Esposito;paolo@new.example\n"  # updated (email)
        f"{MARIO};Mario;Rossi;\n"  # duplicate of line 2
        "RSSMRA85T10A562X;Bad;Code;\n"  # invalid codice fiscale
        f"{LUCIA};Ada;Neri;\n"  # another doctor's patient
        ";No;Id;\n"  # missing national id
    )
    job = run(cast, csv_bytes(text), dry_run=True)
    assert job.summary == {"new": 1, "updated": 1, "unchanged": 0, "invalid": 4, "archived": 0}
    assert "Same codice fiscale as line 2." in job.errors_csv
    assert "is not a valid codice fiscale" in job.errors_csv
    assert "another doctor" in job.errors_csv
    assert not Patient.objects.filter(national_id=MARIO).exists()  # dry run
    other.refresh_from_db()
    assert other.doctor == cast.doctor2


def test_a_row_with_several_problems_is_reported_with_all_of_them(cast):
    """Fixing the file once per problem would take as many imports as the row has faults."""
    text = (
        "CF;Nome;Cognome;Email;Cellulare\n"
        "RSSMRA85T10A562X;;Rossi;mario@;12\n"
        f"{MARIO};Mario;Rossi;;333 123 4567\n"
    )
    job = run(cast, csv_bytes(text), dry_run=True)
    assert (job.summary["new"], job.summary["invalid"]) == (1, 1)
    (row,) = job.errors_csv.splitlines()[1:]
    assert row.endswith(
        ",First name and last name are required. RSSMRA85T10A562X is not a valid codice "
        "fiscale. 12 is not a valid phone number. mario@ is not a valid email address."
    )


def test_importing_the_same_file_twice_changes_nothing(cast):
    content = csv_bytes(f"CF;Nome;Cognome;Email\n{MARIO};Mario;Rossi;m@x.it\n")
    run(cast, content)
    before = list(Patient.objects.values().order_by("pk"))
    job = run(cast, content)
    assert job.summary == {"new": 0, "updated": 0, "unchanged": 1, "invalid": 0, "archived": 0}
    assert list(Patient.objects.values().order_by("pk")) == before


def test_names_never_change_through_an_import(cast):
    Patient.objects.create(
        clinic=cast.clinic,
        doctor=cast.doctor,
        first_name="Mario",
        last_name="Rossi",
        national_id=MARIO,
    )
    job = run(cast, csv_bytes(f"CF;Nome;Cognome\n{MARIO};Marione;Rossetti\n"))
    assert job.summary["unchanged"] == 1
    assert Patient.objects.get(national_id=MARIO).first_name == "Mario"


def test_a_new_email_in_the_file_becomes_the_patients_sign_in_address(cast):
    from allauth.account.models import EmailAddress

    cast.patient.national_id = GINO
    cast.patient.save()
    EmailAddress.objects.create(user=cast.patient.user, email="paolo@patients.test")
    job = run(cast, csv_bytes(f"CF;Nome;Cognome;Email\n{GINO};Paolo;Esposito;Paolo.N@x.it\n"))
    assert job.summary["updated"] == 1
    cast.patient.user.refresh_from_db()
    assert cast.patient.user.email == "paolo.n@x.it"
    assert EmailAddress.objects.get(user=cast.patient.user).email == "paolo.n@x.it"


def test_an_email_of_another_account_is_refused_on_its_row(cast):
    cast.patient.national_id = GINO
    cast.patient.save()
    content = csv_bytes(
        f"CF;Nome;Cognome;Email\n{GINO};Paolo;Esposito;sara@patients.test\n{MARIO};Mario;Rossi;\n"
    )
    job = run(cast, content)
    assert job.summary == {"new": 1, "updated": 0, "unchanged": 0, "invalid": 1, "archived": 0}
    assert "This email address already belongs to another account." in job.errors_csv
    cast.patient.refresh_from_db()
    cast.patient.user.refresh_from_db()
    assert cast.patient.email == cast.patient.user.email == "paolo@patients.test"


def test_two_rows_cannot_give_one_sign_in_address_to_two_accounts(cast):
    """Both sign in with their email: the second row is refused in the preview, rather than
    the whole import failing at the end on the accounts' unique address."""
    cast.patient.national_id = GINO
    cast.patient.save()
    other = add_patient(cast.doctor, "Sara", "Neri", national_id=LUCIA, email="s@x.it")
    other.user = type(cast.patient.user).objects.create_user("s@x.it")
    other.save()
    content = csv_bytes(
        f"CF;Nome;Cognome;Email\n{GINO};Paolo;Esposito;same@x.it\n{LUCIA};Sara;Neri;same@x.it\n"
    )
    job = run(cast, content)
    assert job.status == PatientImport.Status.APPLIED
    assert job.summary == {"new": 0, "updated": 1, "unchanged": 0, "invalid": 1, "archived": 0}
    assert "Line 2 gives this email address to another patient" in job.errors_csv
    cast.patient.user.refresh_from_db()
    other.user.refresh_from_db()
    assert (cast.patient.user.email, other.user.email) == ("same@x.it", "s@x.it")


def test_a_failure_while_writing_leaves_nothing_half_written(cast, monkeypatch):
    cast.patient.national_id = GINO
    cast.patient.save()

    def explode(*args, **kwargs):
        from django.db import IntegrityError

        raise IntegrityError("boom")

    monkeypatch.setattr(Patient.objects, "bulk_update", explode)
    content = csv_bytes(f"CF;Nome;Cognome;Email\n{MARIO};Mario;Rossi;\n{GINO};P;E;p@new.it\n")
    job = run(cast, content)
    assert job.status == PatientImport.Status.FAILED
    assert "Nothing was imported" in job.failure
    assert bytes(PatientImport.objects.get(pk=job.pk).content) == b""
    assert not Patient.objects.filter(national_id=MARIO).exists()


@pytest.mark.parametrize("dry_run", [False, True])
def test_an_import_run_at_once_never_stores_the_file(cast, monkeypatch, dry_run):
    """The command line hands the file over in memory: unlike an upload waiting for the
    worker, it is never written to the database, not even while the import runs."""
    stored = []
    for name in ("patient_import_analyse", "patient_import_apply"):
        original = getattr(services, name)

        def spy(*, job_id, _original=original, **options):
            stored.append(bytes(PatientImport.objects.values_list("content", flat=True).get()))
            return _original(job_id=job_id, **options)

        monkeypatch.setattr(services, name, spy)
    job = run(cast, csv_bytes(f"CF;Nome;Cognome\n{MARIO};Mario;Rossi\nBAD;X;Y\n"), dry_run=dry_run)
    assert stored == [b""]
    assert job.summary["new"] == 1 and job.summary["invalid"] == 1
    assert job.status == ("cancelled" if dry_run else "applied")
    assert Patient.objects.filter(national_id=MARIO).exists() is not dry_run


def test_import_is_audited_with_its_counts(cast):
    run(cast, csv_bytes(f"CF;Nome;Cognome\n{MARIO};Mario;Rossi\n"))
    event = AuditEvent.objects.get(action="patient.import")
    assert event.detail["new"] == 1


def test_two_imports_for_one_doctor_never_run_at_once(cast):
    PatientImport.objects.create(
        clinic=cast.clinic,
        doctor=cast.doctor,
        format="list",
        filename="a.csv",
        content=b"x",
        status=PatientImport.Status.ANALYSING,
    )
    with pytest.raises(DomainError) as caught:
        run(cast, csv_bytes(f"CF;Nome;Cognome\n{MARIO};Mario;Rossi\n"))
    assert caught.value.code == "busy"


# --- SISS -----------------------------------------------------------------------------------

SISS_HEADER = "CODICE FISCALE;COGNOME;NOME;DATA NASCITA;TIPO ASSISTENZA\n"


def test_each_patient_changed_or_archived_by_an_import_has_it_on_their_trail(cast):
    cast.patient.national_id = GINO
    cast.patient.save()
    gone = add_patient(cast.doctor, "Ada", "Neri", national_id=LUCIA)
    text = SISS_HEADER + f"{GINO};ESPOSITO;PAOLO;12/04/1958;T\n{MARIO};ROSSI;MARIO;10/12/1985;A\n"
    job = run(cast, csv_bytes(text, "cp1252"), format="siss", archive_missing=True)
    changed = AuditEvent.objects.get(action="patient.import_update")
    assert changed.patient == cast.patient
    assert changed.detail == {"fields": ["date_of_birth", "state"], "import": str(job.pk)}
    archived = AuditEvent.objects.get(action="patient.archive")
    assert (archived.patient, archived.detail["import"]) == (gone, str(job.pk))
    # New patients are the import's own rows: none each.
    assert AuditEvent.objects.filter(patient__national_id=MARIO).count() == 0


def test_a_date_of_birth_in_the_future_refuses_its_row(cast):
    text = SISS_HEADER + f"{MARIO};ROSSI;MARIO;10/12/2099;A\n{LUCIA};BIANCHI;LUCIA;;A\n"
    job = run(cast, csv_bytes(text, "cp1252"), format="siss")
    assert job.summary["invalid"] == 1 and job.summary["new"] == 1
    assert "is in the future." in job.errors_csv


def test_a_regional_file_with_no_rows_archives_nobody(cast):
    """Cut short after its header, a SISS file would otherwise list nobody, and "archive the
    patients it no longer lists" would archive them all."""
    with pytest.raises(DomainError) as caught:
        run(cast, csv_bytes(SISS_HEADER, "cp1252"), format="siss", archive_missing=True)
    assert caught.value.code == "no_rows"
    assert not Patient.objects.filter(archived_at__isnull=False).exists()


def test_siss_import_updates_temporary_state_and_archives_the_missing(cast):
    cast.patient.national_id = GINO
    cast.patient.save()  # on the regional list, becomes temporary
    gone = Patient.objects.create(
        clinic=cast.clinic,
        doctor=cast.doctor,
        first_name="Ada",
        last_name="Neri",
        national_id=LUCIA,
    )
    text = SISS_HEADER + f"{GINO};ESPOSITO;PAOLO;12/04/1958;T\n{MARIO};ROSSI;MARIO;10/12/1985;A\n"
    job = run(cast, csv_bytes(text, "cp1252"), name="siss.csv", format="siss", archive_missing=True)
    assert job.summary == {"new": 1, "updated": 1, "unchanged": 0, "invalid": 0, "archived": 1}
    cast.patient.refresh_from_db()
    gone.refresh_from_db()
    assert cast.patient.state == Patient.State.SSN_TEMPORARY
    assert str(cast.patient.date_of_birth) == "1958-04-12"
    assert gone.is_archived and gone.state == Patient.State.SSN_REVOKED
    assert Patient.objects.get(national_id=MARIO).state == Patient.State.SSN


def test_siss_without_archive_option_archives_nobody(cast):
    gone = Patient.objects.create(
        clinic=cast.clinic,
        doctor=cast.doctor,
        first_name="Ada",
        last_name="Neri",
        national_id=LUCIA,
    )
    run(cast, csv_bytes(SISS_HEADER + f"{MARIO};ROSSI;MARIO;;A\n"), format="siss")
    gone.refresh_from_db()
    assert not gone.is_archived


def test_siss_unknown_assistance_code_is_an_invalid_row(cast):
    job = run(
        cast, csv_bytes(SISS_HEADER + f"{MARIO};ROSSI;MARIO;;X\n"), format="siss", dry_run=True
    )
    assert "Unknown registration type: X." in job.errors_csv


# --- the pages ------------------------------------------------------------------------------


def upload(content, name="list.csv"):
    return SimpleUploadedFile(name, content, content_type="text/csv")


def test_doctor_previews_confirms_and_downloads_the_error_report(
    client, login, cast, django_capture_on_commit_callbacks
):
    login(cast.doctor)
    content = csv_bytes(f"CF;Nome;Cognome\n{MARIO};Mario;Rossi\nBAD;X;Y\n")
    with django_capture_on_commit_callbacks(execute=True):  # the worker's analysis
        response = client.post(
            reverse("patient_import_start"),
            {"format": "list", "doctor": cast.doctor.pk, "file": upload(content)},
        )
    job = PatientImport.objects.get()
    assert response.url == reverse("patient_import", args=[job.pk])
    page = client.get(response.url).content.decode()
    assert "Confirm the import" in page and "Rossi Mario" in page
    assert not Patient.objects.filter(national_id=MARIO).exists()
    errors = client.get(reverse("patient_import_errors", args=[job.pk])).content.decode()
    assert errors.startswith("\ufeff") and "BAD" in errors
    with django_capture_on_commit_callbacks(execute=True):  # the worker's apply
        client.post(reverse("patient_import_confirm", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == PatientImport.Status.APPLIED
    assert Patient.objects.filter(national_id=MARIO, doctor=cast.doctor).exists()
    assert job.content == b""  # the uploaded patient data is not kept


def test_the_preview_says_how_many_rows_it_does_not_list(
    client, login, cast, django_capture_on_commit_callbacks
):
    """It lists 20 rows of each kind, then "…and N more."; once applied, the page leads back
    to the patients."""
    new = [f"{cf(f'RSSMRA85T10A{n:03d}')};Mario;Rossi{n}" for n in range(23)]
    invalid = [f"BAD{n};X;Y" for n in range(21)]
    login(cast.doctor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("patient_import_start"),
            {
                "format": "list",
                "doctor": cast.doctor.pk,
                "file": upload(csv_bytes("CF;Nome;Cognome\n" + "\n".join(new + invalid) + "\n")),
            },
        )
    page = client.get(response.url).content.decode()
    assert page.count("…and 3 more.") == 1  # new patients: 23, 20 listed
    assert page.count("…and 1 more.") == 1  # invalid rows: 21, 20 listed
    assert "Back to the patients" not in page
    job = PatientImport.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("patient_import_confirm", args=[job.pk]))
    page = client.get(response.url).content.decode()
    assert "The import is done." in page and "more." not in page
    assert f'href="{reverse("patient_list")}">Back to the patients</a>' in page


@pytest.mark.parametrize(("language", "delimiter"), [("en", ","), ("it", ";"), ("nb", ";")])
def test_the_error_report_is_separated_as_the_export_is(cast, language, delimiter):
    """Excel in Italian, French or Norwegian reads semicolons, as the export writes them."""
    with translation.override(language):
        job = run(cast, csv_bytes(f"CF;Nome;Cognome\n{MARIO};Mario;Rossi\nBAD;X;Y\n"))
    header, line = job.errors_csv.splitlines()[:2]
    assert header.count(delimiter) == 6
    assert line.startswith(f"3{delimiter}BAD{delimiter}Y{delimiter}X{delimiter}")


def test_bad_file_on_the_page_gets_a_clear_error(client, login, cast):
    login(cast.doctor)
    response = client.post(
        reverse("patient_import_start"),
        {"format": "list", "doctor": cast.doctor.pk, "file": upload(b"\x00\x00binary")},
    )
    assert response.status_code == 400
    assert "This file is not a CSV or XLSX file." in response.content.decode()
    assert not PatientImport.objects.exists()


def test_secretary_of_the_team_imports_for_its_doctor(client, login, cast):
    CareTeam.objects.get(clinic=cast.clinic).members.add(cast.secretary)
    login(cast.secretary)
    client.post(
        reverse("patient_import_start"),
        {
            "format": "list",
            "doctor": cast.doctor.pk,
            "file": upload(csv_bytes(f"CF;Nome;Cognome\n{MARIO};Mario;Rossi\n")),
        },
    )
    assert PatientImport.objects.get().doctor == cast.doctor


@pytest.mark.parametrize("who", ["other_doctor", "clinic_admin", "patient", "secretary"])
def test_outsiders_cannot_see_or_confirm_an_import(client, login, cast, who):
    job = patient_import_start(
        by=cast.doctor,
        doctor=cast.doctor,
        filename="a.csv",
        content=csv_bytes(f"CF;Nome;Cognome\n{MARIO};Mario;Rossi\n"),
        format="list",
    )
    login(getattr(cast, who))
    for name in ("patient_import", "patient_import_status", "patient_import_errors"):
        assert client.get(reverse(name, args=[job.pk])).status_code == 404
    assert client.post(reverse("patient_import_confirm", args=[job.pk])).status_code == 404
    assert not Patient.objects.filter(national_id=MARIO).exists()


def test_start_page_is_only_for_doctors_and_secretaries(client, login, cast):
    login(cast.clinic_admin)
    assert client.get(reverse("patient_import_start")).status_code == 404


# --- the command --------------------------------------------------------------------------


def test_command_prints_the_summary_and_fails_on_an_unreadable_file(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(CONSULTA_ENV="test", CONSULTA_DATA_DIR=str(tmp_path))

    def consulta(*args):
        return subprocess.run(  # noqa: S603
            [sys.executable, "-m", "consulta", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert consulta("migrate", "-v", "0").returncode == 0
    assert consulta("seed_demo").returncode == 0
    good = tmp_path / "list.csv"
    good.write_bytes(csv_bytes(f"CF;Nome;Cognome\n{MARIO};Mario;Rossi\nBAD;X;Y\n"))
    args = ["--clinic", "1", "--doctor", "anna.rossi@demo.consulta.test"]
    result = consulta("import-patients", str(good), *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "created=1 updated=0 unchanged=0 archived=0 invalid=1"
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = consulta("import-patients", str(empty), *args)
    assert result.returncode != 0
    assert "The file is empty." in result.stderr


# --- the apply: one pass on PostgreSQL, whole or nothing --------------------------------------

# Every kind of row: new, updated, unchanged, duplicate, invalid for several reasons.
MIXED_ROWS = (
    "CF;Nome;Cognome;Email;Cellulare\n"
    f"{MARIO};Mario;Rossi;mario@x.it;333 111 2222\n"  # new
    f"{GINO};Paolo;Esposito;paolo@new.example;\n"  # updated (email)
    f"{LUCIA};Lucia;Bianchi;lucia@x.it;\n"  # unchanged
    f"{MARIO};Mario;Rossi;;\n"  # same national id as line 2
    "RSSMRA85T10A562X;Bad;Code;;\n"  # invalid codice fiscale
    f"{cf('NRIDAA60A41F205')};Ada;Neri;;\n"  # another doctor's patient
    f"{cf('VRDLGU75B12H501')};Luigi;Verdi;;\n"  # in the archive
    f"{cf('BLUANN80A41F205')};Anna;Blu;not-an-email;\n"  # invalid email
    f"{cf('GLLPLA82C10F205')};Paola;Gialli;;12\n"  # invalid phone
    ";No;Id;;\n"  # missing national id
    f"{cf('FRRGNN66D15L219')};Giovanni;Ferri;;\n"  # new
    f"{cf('FRRGNN66D15L219')};Giovanni;Ferri;;\n"  # same national id as line 12
)
NEW_IN_FILE_ORDER = [MARIO, cf("FRRGNN66D15L219")]


@pytest.fixture
def registry(cast) -> None:
    """The patients MIXED_ROWS meets: the doctor's (one to update, one unchanged, one in the
    archive) and another doctor's."""
    cast.patient.national_id = GINO
    cast.patient.save()
    add_patient(cast.doctor, "Lucia", "Bianchi", national_id=LUCIA, email="lucia@x.it")
    add_patient(cast.doctor2, "Ada", "Neri", national_id=cf("NRIDAA60A41F205"))
    add_patient(cast.doctor, "Luigi", "Verdi", national_id=cf("VRDLGU75B12H501"), archived="OTHER")


def registry_rows():
    return list(Patient.objects.order_by("pk").values())


@pytest.mark.parametrize("path", ["worker", "command"])
def test_the_apply_writes_exactly_what_the_preview_showed(
    cast, registry, path, django_capture_on_commit_callbacks
):
    content = csv_bytes(MIXED_ROWS)
    before = registry_rows()
    if path == "worker":  # analyse, confirm, apply (which checks every row again)
        with django_capture_on_commit_callbacks(execute=True):
            job = patient_import_start(
                by=cast.doctor, doctor=cast.doctor, filename="l.csv", content=content, format="list"
            )
        job.refresh_from_db()
        assert job.status == PatientImport.Status.PREVIEW
    else:  # the command's dry run, then the real run (one pass, no separate analysis)
        job = run(cast, content, dry_run=True)
    assert registry_rows() == before  # nothing written by the analysis
    preview = (job.summary, job.preview, job.errors_csv)
    assert job.summary == {"new": 2, "updated": 1, "unchanged": 1, "invalid": 8, "archived": 0}

    if path == "worker":
        with django_capture_on_commit_callbacks(execute=True):
            patient_import_confirm(by=cast.doctor, job=job)
        job.refresh_from_db()
    else:
        job = run(cast, content)
        job.refresh_from_db()
    assert job.status == PatientImport.Status.APPLIED
    assert (job.summary, job.preview, job.errors_csv) == preview
    assert job.processed == job.total == 12
    # The new patients, in the file's order, with their checked values.
    created = Patient.objects.exclude(pk__in=[p["id"] for p in before]).order_by("pk")
    assert [p.national_id for p in created] == NEW_IN_FILE_ORDER
    mario = created[0]
    assert (mario.email, mario.phone, mario.state) == ("mario@x.it", "+393331112222", "SSN")
    assert (mario.clinic, mario.doctor, mario.archived_at) == (cast.clinic, cast.doctor, None)
    # The update, and nothing else changed.
    after = {p["id"]: p for p in registry_rows()}
    for old in before:
        new = after[old["id"]]
        if old["national_id"] == GINO:
            assert new["email"] == "paolo@new.example"
            assert new["updated_at"] > old["updated_at"]
            new = {**new, **{f: old[f] for f in ("email", "updated_at")}}
        assert new == old
    event = AuditEvent.objects.get(action="patient.import")
    assert event.detail == job.summary


def test_a_patient_added_between_preview_and_apply_is_compared_again(
    cast, django_capture_on_commit_callbacks
):
    content = csv_bytes(f"CF;Nome;Cognome\n{MARIO};Mario;Rossi\n{LUCIA};Lucia;Bianchi\n")
    with django_capture_on_commit_callbacks(execute=True):
        job = patient_import_start(
            by=cast.doctor, doctor=cast.doctor, filename="l.csv", content=content, format="list"
        )
    job.refresh_from_db()
    assert job.summary["new"] == 2
    add_patient(cast.doctor2, "Mario", "Rossi", national_id=MARIO)  # meanwhile, elsewhere
    with django_capture_on_commit_callbacks(execute=True):
        patient_import_confirm(by=cast.doctor, job=job)
    job.refresh_from_db()
    assert job.status == PatientImport.Status.APPLIED
    assert job.summary == {"new": 1, "updated": 0, "unchanged": 0, "invalid": 1, "archived": 0}
    assert "another doctor" in job.errors_csv
    assert Patient.objects.get(national_id=MARIO).doctor == cast.doctor2
    assert Patient.objects.get(national_id=LUCIA).doctor == cast.doctor


def test_a_clash_with_the_registry_while_writing_leaves_nothing_written(
    cast, registry, monkeypatch
):
    """A patient with one of the file's identifiers appears after the registry was read
    (simulated: the snapshot misses them). The write fails on the unique constraint, after
    new rows before it were already sent: all of it is rolled back, the update too."""
    clash = cf("FRRGNN66D15L219")
    add_patient(cast.doctor, "Giovanni", "Ferri", national_id=clash)
    real = plan.registry_of
    monkeypatch.setattr(
        plan,
        "registry_of",
        lambda clinic_id: {nid: row for nid, row in real(clinic_id).items() if nid != clash},
    )
    before = registry_rows()
    job = run(cast, csv_bytes(MIXED_ROWS))
    assert job.status == PatientImport.Status.FAILED
    assert "Nothing was imported" in job.failure
    assert registry_rows() == before  # neither the new patients nor the update
    assert not AuditEvent.objects.filter(action="patient.import").exists()
    assert bytes(PatientImport.objects.get(pk=job.pk).content) == b""


def test_an_error_in_the_middle_of_the_write_leaves_nothing_written(cast, monkeypatch):
    real = plan.validate_row

    def validate_row(country, fmt, line, values):
        if line == 4:
            raise RuntimeError("unexpected")
        return real(country, fmt, line, values)

    monkeypatch.setattr(plan, "validate_row", validate_row)
    content = csv_bytes(
        f"CF;Nome;Cognome\n{MARIO};Mario;Rossi\n{LUCIA};Lucia;Bianchi\n{GINO};Gino;Verdi\n"
    )
    with pytest.raises(RuntimeError):
        run(cast, content)
    assert not Patient.objects.filter(national_id__in=[MARIO, LUCIA, GINO]).exists()
    # The job says so, and does not block the doctor's next import.
    job = PatientImport.objects.latest("created_at")
    assert job.status == PatientImport.Status.FAILED
    assert "unexpected error" in job.failure
    monkeypatch.undo()
    assert run(cast, content).status == PatientImport.Status.APPLIED


# PostgreSQL, outside a test transaction: a second connection inserts during the COPY, and
# the page's connection watches the progress.


@pytest.fixture
def on_postgres():
    from tests.services import in_the_postgres_pass

    in_the_postgres_pass()


def in_another_connection(work):
    """Run work() in a thread, with its own database connection, and return its result."""
    from django.db import connections

    outcome = []

    def target():
        try:
            outcome.append(work())
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=30)
    return outcome[0]


def during_the_copy(monkeypatch, at_row: int, work):
    """Call work() when the apply is at row `at_row` (0-based) of the file, its COPY open."""
    real = services.iter_checked

    def iter_checked(*args, **kwargs):
        for n, result in enumerate(real(*args, **kwargs)):
            if n == at_row:
                work()
            yield result

    monkeypatch.setattr(services, "iter_checked", iter_checked)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_patient_inserted_during_the_copy_fails_the_import_cleanly(
    on_postgres, cast, monkeypatch
):
    ids = [MARIO, LUCIA, GINO, cf("FRRGNN66D15L219")]
    content = csv_bytes(
        "CF;Nome;Cognome\n" + "".join(f"{nid};Nome{n};Cognome{n}\n" for n, nid in enumerate(ids))
    )
    during_the_copy(
        monkeypatch,
        1,  # row 0 is already in the COPY; the last row clashes with this insert
        lambda: in_another_connection(
            lambda: add_patient(cast.doctor2, "Giovanni", "Ferri", national_id=ids[-1]).pk
        ),
    )
    job = run(cast, content)
    assert job.status == PatientImport.Status.FAILED  # not left "applying"
    assert "Nothing was imported" in job.failure
    assert list(
        Patient.objects.filter(national_id__in=ids).values_list("national_id", "doctor")
    ) == [(ids[-1], cast.doctor2.pk)]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_clash_in_a_later_chunk_of_the_copy_undoes_the_earlier_chunks(
    on_postgres, cast, monkeypatch
):
    """The rows go to the server two by two here: the first chunks are stored (and their
    foreign keys checked) before the clash, and still nothing is left of them."""
    monkeypatch.setattr(services._CopyWriter, "CHUNK", 2)
    ids = [cf(f"RSSMRA85T10A{n:03d}") for n in range(7)]
    content = csv_bytes(
        "CF;Nome;Cognome\n" + "".join(f"{nid};Nome{n};Cognome{n}\n" for n, nid in enumerate(ids))
    )
    during_the_copy(
        monkeypatch,
        5,  # two chunks sent; the clash is in the third
        lambda: in_another_connection(
            lambda: add_patient(cast.doctor2, "Giovanni", "Ferri", national_id=ids[5]).pk
        ),
    )
    job = run(cast, content)
    assert job.status == PatientImport.Status.FAILED
    assert "Nothing was imported" in job.failure
    assert list(Patient.objects.filter(national_id__in=ids).values_list("national_id")) == [
        (ids[5],)
    ]
    again = run(cast, csv_bytes("CF;Nome;Cognome\n" + f"{ids[0]};Nome;Cognome\n"))
    assert (again.status, again.summary["new"]) == (PatientImport.Status.APPLIED, 1)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_clash_in_the_first_chunk_stops_the_import_at_the_next_one(
    on_postgres, cast, monkeypatch
):
    """The server's error reaches the checking thread when it hands over the next chunk: the
    rest of the file is not even checked."""
    monkeypatch.setattr(services._CopyWriter, "CHUNK", 2)
    ids = [cf(f"RSSMRA85T10A{n:03d}") for n in range(9)]
    added = []
    real_add = services._CopyWriter.add

    def add(writer, row):
        added.append(row)
        if len(added) == 4:  # the second chunk is full: first, the first one's fate
            deadline = time.monotonic() + 10
            while writer.error is None and time.monotonic() < deadline:
                time.sleep(0.01)
        real_add(writer, row)

    monkeypatch.setattr(services._CopyWriter, "add", add)
    during_the_copy(  # before the first chunk (rows 0 and 1) goes: it clashes
        monkeypatch,
        0,
        lambda: in_another_connection(
            lambda: add_patient(cast.doctor2, "Giovanni", "Ferri", national_id=ids[1]).pk
        ),
    )
    content = csv_bytes(
        "CF;Nome;Cognome\n" + "".join(f"{nid};Nome{n};Cognome{n}\n" for n, nid in enumerate(ids))
    )
    job = run(cast, content)
    assert job.status == PatientImport.Status.FAILED
    assert "Nothing was imported" in job.failure
    assert len(added) == 4  # raised at the hand-over of the second chunk
    assert Patient.objects.filter(national_id__in=ids).count() == 1


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_failure_while_checking_leaves_nothing_written_and_no_thread_behind(
    on_postgres, cast, monkeypatch
):
    """The checking thread fails with chunks already sent and queued: the writer drops the
    rest, the transaction is rolled back, and the connection is usable."""
    monkeypatch.setattr(services._CopyWriter, "CHUNK", 2)
    ids = [cf(f"RSSMRA85T10A{n:03d}") for n in range(10)]
    content = csv_bytes("CF;Nome;Cognome\n" + "".join(f"{nid};Mario;Rossi\n" for nid in ids))

    def fail():
        raise RuntimeError("the checking thread fails")

    during_the_copy(monkeypatch, 7, fail)
    with pytest.raises(RuntimeError):
        run(cast, content)
    assert PatientImport.objects.get().status == PatientImport.Status.FAILED
    assert not Patient.objects.filter(national_id__in=ids).exists()
    assert "import-copy" not in [t.name for t in threading.enumerate()]
    monkeypatch.undo()
    job = run(cast, content)  # the same connection, again
    assert (job.status, job.summary["new"]) == (PatientImport.Status.APPLIED, 10)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_an_import_in_many_chunks_stores_every_row_once(on_postgres, cast, monkeypatch):
    monkeypatch.setattr(services._CopyWriter, "CHUNK", 3)
    ids = [cf(f"RSSMRA85T10A{n:03d}") for n in range(10)]
    content = csv_bytes("CF;Nome;Cognome\n" + "".join(f"{nid};Mario;Rossi\n" for nid in ids))
    job = run(cast, content)
    assert job.status == PatientImport.Status.APPLIED
    stored = Patient.objects.filter(national_id__in=ids).values_list("national_id", flat=True)
    assert sorted(stored) == sorted(ids)


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_binary_copy_stores_each_value_as_checked(on_postgres, cast):
    """The COPY sends binary values of the table's own types: text that the text format
    would have escaped (a backslash, a tab, an accent, an apostrophe), a date, a state, the
    clinic and doctor, the same timestamp twice, and NULL for a missing date."""
    list_file = csv_bytes(
        "Codice fiscale;Nome;Cognome;Email;Cellulare\n"
        f"{MARIO};Niccolò\\N;D'Angelo\tJr;Mario.Rossi@Example.IT;333 123 4567\n"
        f"{LUCIA};Lucia;Bianchi;;\n"
    )
    assert run(cast, list_file).status == PatientImport.Status.APPLIED
    siss_file = SISS_HEADER + f"{GINO};ESPOSITO;PAOLO;12/04/1958;T\n"
    assert run(cast, csv_bytes(siss_file, "cp1252"), format="siss").summary["new"] == 1
    fields = (
        "clinic_id",
        "doctor_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "state",
        "date_of_birth",
        "archive_reason",
        "archived_at",
        "user_id",
    )
    stored = Patient.objects.filter(national_id__in=[MARIO, LUCIA, GINO]).order_by("national_id")
    clinic, doctor = cast.doctor.clinic_id, cast.doctor.pk
    assert [tuple(str(v) for v in row) for row in stored.values_list(*fields)] == [
        (str(clinic), str(doctor), "Lucia", "Bianchi", "", "", "SSN", "None", "", "None", "None"),
        (
            *(str(clinic), str(doctor), "Niccolò\\N", "D'Angelo\tJr"),
            *("mario.rossi@example.it", "+393331234567", "SSN", "None", "", "None", "None"),
        ),
        (
            *(str(clinic), str(doctor), "PAOLO", "ESPOSITO", "", ""),
            *("SSN_TEMPORARY", "1958-04-12", "", "None", "None"),
        ),
    ]
    for patient in stored:
        assert patient.created_at == patient.updated_at
        assert patient.created_at.tzinfo is not None


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_foreign_keys_are_deferred_again_after_the_copy(on_postgres, cast):
    """The COPY checks its foreign keys chunk by chunk; what the same transaction writes
    afterwards is checked at COMMIT again, as Django's foreign keys are everywhere else."""
    content = csv_bytes(f"CF;Nome;Cognome\n{MARIO};Mario;Rossi\n")
    written = False
    with pytest.raises(IntegrityError), transaction.atomic():
        assert run(cast, content).status == PatientImport.Status.APPLIED
        Patient.objects.create(  # a doctor who does not exist: not refused yet
            clinic=cast.doctor.clinic, doctor_id=10**9, first_name="Nessun", last_name="Medico"
        )
        written = True
    assert written


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_progress_of_the_apply_is_visible_while_it_runs(on_postgres, cast, monkeypatch):
    monkeypatch.setattr(plan, "PROGRESS_EVERY", 2)
    ids = [cf(f"RSSMRA85T10A{n:03d}") for n in range(10)]
    content = csv_bytes("CF;Nome;Cognome\n" + "".join(f"{nid};Mario;Rossi\n" for nid in ids))
    # As from the page: the analysis counts the rows, the confirmed apply reports its progress.
    job = patient_import_start(
        by=cast.doctor, doctor=cast.doctor, filename="l.csv", content=content, format="list"
    )
    job.refresh_from_db()
    assert (job.status, job.total) == (PatientImport.Status.PREVIEW, 10)
    seen = []
    during_the_copy(
        monkeypatch,
        6,
        lambda: seen.append(
            in_another_connection(
                lambda: PatientImport.objects.values_list("processed", "total").get()
            )
        ),
    )
    patient_import_confirm(by=cast.doctor, job=job)
    job.refresh_from_db()
    assert job.status == PatientImport.Status.APPLIED
    assert seen == [(6, 10)]  # committed while the import's transaction was still open
    assert (job.processed, job.total, job.summary["new"]) == (10, 10, 10)
