"""Patient import throughput: a generated, valid N-row list CSV imported on PostgreSQL through
the same service the import page and the command use (reading, validation, checks against
the registry, one-transaction write): once as the command runs it (rows_per_s), once as the
page does (upload, preview, Confirm: page_preview_s, page_apply_rows_per_s); against a
baseline measured in the same run: 2,000 rows the naive way, one ORM create per row after
full_clean().

    uv run python bench/patients_import.py [--rows 100000]

Progress goes to stderr; the last line on stdout is one JSON object.
Targets: rows_per_s >= 20,000, ratio >= 20, peak_rss_mb <= 300.

On PostgreSQL the import checks each row and sends the new ones to the server 2,000 at a
time (a binary COPY each, from a thread of its own), so the server stores and indexes rows,
and checks their foreign keys, while Python checks the next ones: the time is about the
larger of import_cpu_s (mostly the phone, codice fiscale and email checks) and server_cpu_s
(the server's own work, the search's trigram index first), if two cores are free.
"""

import argparse
import json
import os
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import log  # noqa: E402
from tests.browser.server import _postgres_database  # noqa: E402
from tests.services import POSTGRES_URL  # noqa: E402

SURNAMES = [
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Romano",
    "Colombo",
    "Ricci",
    "Marino",
    "Greco",
    "Bruno",
    "Gallo",
    "Conti",
    "De Luca",
    "Mancini",
    "Costa",
    "Giordano",
    "Rizzo",
    "Lombardi",
    "Moretti",
]
NAMES = [
    "Marco",
    "Giulia",
    "Luca",
    "Francesca",
    "Alessandro",
    "Chiara",
    "Andrea",
    "Sara",
    "Matteo",
    "Elena",
    "Paolo",
    "Anna",
    "Davide",
    "Laura",
    "Simone",
    "Valentina",
]
CONSONANTS = "BCDFGHJKLMNPQRSTVWXZ"
MONTHS = "ABCDEHLMPRST"


def codice_fiscale(i: int) -> str:
    from stdnum.it import codicefiscale

    rng = random.Random(i)
    letters = "".join(rng.choice(CONSONANTS) for _ in range(6))
    body = (
        f"{letters}{rng.randint(30, 99):02d}{rng.choice(MONTHS)}{rng.randint(1, 28):02d}"
        f"F{i % 1000:03d}"
    )
    return body + codicefiscale.calc_check_digit(body)


def unique_codici_fiscali(count: int, start: int = 0) -> list[str]:
    found, i = [], start
    seen = set()
    while len(found) < count:
        cf = codice_fiscale(i)
        i += 1
        if cf not in seen:
            seen.add(cf)
            found.append(cf)
    return found


def make_csv(codici: list[str]) -> bytes:
    """A list as a records program exports it: CF, names, email, a mobile without +39."""
    lines = ["Codice fiscale;Nome;Cognome;Email;Cellulare"]
    for n, cf in enumerate(codici):
        first, last = NAMES[n % len(NAMES)], SURNAMES[(n // 7) % len(SURNAMES)]
        lines.append(f"{cf};{first};{last};{first.lower()}{n}@example.it;33{n % 10} {n:07d}")
    return ("\n".join(lines) + "\n").encode()


def import_as_from_the_page(doctor, content: bytes) -> tuple[float, float]:
    """Upload, preview and Confirm as the import page does them, running the worker's tasks
    here; returns the seconds of the analysis and of the apply."""
    from consulta.patients.imports.services import patient_import_confirm, patient_import_start
    from consulta.patients.models import PatientImport
    from consulta.patients.tasks import analyse_import, apply_import

    job = patient_import_start(
        by=doctor, doctor=doctor, filename="bench.csv", content=content, format="list"
    )
    started = time.perf_counter()
    analyse_import.call(str(job.pk))
    analysed = time.perf_counter()
    job.refresh_from_db()
    assert job.status == PatientImport.Status.PREVIEW, (job.status, job.failure)
    patient_import_confirm(by=doctor, job=job)
    applying = time.perf_counter()
    apply_import.call(str(job.pk))
    applied = time.perf_counter()
    job.refresh_from_db()
    assert job.status == PatientImport.Status.APPLIED, (job.status, job.failure)
    assert job.summary["new"] == job.total, job.summary
    return analysed - started, applied - applying


def backend_pid(connection) -> int:
    """The PostgreSQL server process of this connection (the import uses the same one)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def cpu_seconds_of(pid: int) -> float | None:
    """User + system CPU time of a local process, or None when it is not on this machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-rows", type=int, default=2_000)
    args = parser.parse_args()

    with _postgres_database(POSTGRES_URL) as database_url:
        os.environ.update(
            CONSULTA_ENV="demo",
            DATABASE_URL=database_url,
            DJANGO_SETTINGS_MODULE="consulta.settings",
            LOG_LEVEL="WARNING",
        )
        os.environ.pop("REDIS_URL", None)
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from consulta.accounts.demo import seed_demo
        from consulta.patients.imports.services import patient_import_run
        from consulta.patients.models import Patient

        call_command("migrate", verbosity=0)
        demo = seed_demo(visits=0)
        doctor = demo.doctor
        log(f"generating {args.rows} rows…")
        codes = unique_codici_fiscali(args.rows)
        content = make_csv(codes)
        log(f"{len(content) / 1e6:.1f} MB; importing through the service…")
        rss_before = peak_rss_mb()
        load_before = os.getloadavg()[0]
        backend = backend_pid(connection)
        server_cpu_started = cpu_seconds_of(backend)
        started, cpu_started = time.perf_counter(), time.process_time()
        job = patient_import_run(
            doctor=doctor, filename="bench.csv", content=content, format="list"
        )
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        server_cpu_seconds = cpu_seconds_of(backend)
        if server_cpu_seconds is not None and server_cpu_started is not None:
            server_cpu_seconds -= server_cpu_started
        load_after = os.getloadavg()[0]
        assert job.status == "applied", (job.status, job.failure)
        assert job.summary["new"] == args.rows, job.summary
        rows_per_s = args.rows / seconds
        log(f"service: {seconds:.2f}s, {rows_per_s:,.0f} rows/s, summary {job.summary}")

        # The same file again, as from the import page, once the first import's patients are
        # deleted and the table vacuumed: stored with the job on upload, analysed for the
        # preview, then applied on Confirm, each by the worker's own task.
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM patients_patient WHERE doctor_id = %s AND national_id = ANY(%s)",
                [doctor.pk, codes],
            )
            cursor.execute("VACUUM ANALYZE patients_patient")
        page_analysis_seconds, page_apply_seconds = import_as_from_the_page(doctor, content)
        log(
            f"as from the page: preview {page_analysis_seconds:.2f}s, apply "
            f"{page_apply_seconds:.2f}s ({args.rows / page_apply_seconds:,.0f} rows/s)"
        )

        # Baseline: the naive way, for the clinic's other doctor, with fresh identifiers.
        other = (
            type(doctor)
            .objects.filter(clinic=doctor.clinic, role="DOCTOR")
            .exclude(pk=doctor.pk)
            .first()
        )
        taken = set(Patient.objects.values_list("national_id", flat=True))
        baseline_ids = [
            cf for cf in unique_codici_fiscali(args.baseline_rows * 2, 10**7) if cf not in taken
        ][: args.baseline_rows]
        started = time.perf_counter()
        for n, cf in enumerate(baseline_ids):
            patient = Patient(
                clinic=doctor.clinic,
                doctor=other,
                first_name="Base",
                last_name=f"Line{n}",
                national_id=cf,
                email=f"base{n}@example.it",
                phone=f"+3933{n:08d}",
            )
            patient.full_clean()
            patient.save()
        baseline_seconds = time.perf_counter() - started
        baseline = args.baseline_rows / baseline_seconds
        log(f"baseline: {baseline_seconds:.2f}s, {baseline:,.0f} rows/s")
        connection.close()

    print(
        json.dumps(
            {
                "bench": "patients_import",
                "rows": args.rows,
                "seconds": round(seconds, 2),
                "rows_per_s": round(rows_per_s),
                "baseline_rows_per_s": round(baseline),
                "ratio": round(rows_per_s / baseline, 1),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "rss_before_import_mb": round(rss_before, 1),
                # This process's CPU time during the import (reading, checks, sending rows),
                # and the machine's 1-minute load before and after it: on a small shared
                # machine, rows_per_s moves with the load.
                # From the import page: the preview's analysis, then the apply that the user
                # waits for after pressing Confirm (the same apply, with the stored file).
                "page_preview_s": round(page_analysis_seconds, 2),
                "page_apply_rows_per_s": round(args.rows / page_apply_seconds),
                "import_cpu_s": round(cpu_seconds, 2),
                # The PostgreSQL backend's CPU time for the same import (storing, indexing,
                # the foreign-key checks at COMMIT), when the server runs on this machine:
                # with two cores, the slower of the two sides sets rows_per_s.
                "server_cpu_s": (
                    round(server_cpu_seconds, 2) if server_cpu_seconds is not None else None
                ),
                "load_1m": [round(load_before, 2), round(load_after, 2)],
            }
        )
    )


if __name__ == "__main__":
    main()
