"""No double booking under concurrency: many threads book through `booking_create()` at once,
on PostgreSQL, where the exclusion constraint on active `BookingHold` rows decides every race.

    uv run python bench/booking_race.py [--races 20] [--attempts 50] [--requests 10000]
                                        [--threads 16]

Part 1: `--races` races; in each, `--attempts` threads (one database connection each, all
connected before a barrier releases them together) book the same free slot of the demo
doctor. Exactly one must win; the others must get SlotTaken.
Part 2: `--requests` bookings of random template slots (either type) in one week of the same
doctor, by a pool of `--threads` threads. Afterwards one SQL self-join counts the pairs of
active holds of one clinician that overlap.

Any exception other than SlotTaken is an error (logged with its traceback). Progress goes to
stderr; the last line on stdout is one JSON object. Targets: winners_per_race_max =
winners_per_race_min = 1, overlaps 0, errors 0.
"""

import argparse
import os
import random
import sys
import threading
import time
import traceback
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import emit, log  # noqa: E402
from tests.browser.server import _postgres_database  # noqa: E402
from tests.services import POSTGRES_URL  # noqa: E402

PATIENTS = 50
SEED = 20260101
TRACEBACKS_SHOWN = 5


class Outcomes:
    """Winners, losers and errors, from many threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.won = 0
        self.lost = 0
        self.errors: list[tuple[str, str, str]] = []  # (where, summary, traceback)

    def win(self) -> None:
        with self.lock:
            self.won += 1

    def lose(self) -> None:
        with self.lock:
            self.lost += 1

    def error(self, where: str, exc: BaseException) -> None:
        # One line per kind of error (a deadlock's message names process ids: first line only).
        first_line = (str(exc).splitlines() or [""])[0]
        summary = f"{type(exc).__module__}.{type(exc).__qualname__}: {first_line}"
        for label, value in (
            ("code", getattr(exc, "code", None)),
            ("sqlstate", getattr(exc.__cause__, "sqlstate", None)),
        ):
            if value:
                summary += f" [{label}={value}]"
        with self.lock:
            self.errors.append((where, summary, traceback.format_exc()))


class Actors:
    """The people and things one thread books with, loaded on that thread's connection."""

    def __init__(self, ids: dict, patient_ids: list[int]) -> None:
        from consulta.accounts.models import StaffMember
        from consulta.patients.models import Patient
        from consulta.scheduling.models import AppointmentType

        staff = StaffMember.objects.select_related("user", "clinic")
        self.doctor = staff.get(pk=ids["doctor"])
        self.secretary = staff.get(pk=ids["secretary"])
        patients = Patient.objects.select_related("clinic", "user", "doctor")
        self.patients = {p.pk: p for p in patients.filter(pk__in=patient_ids)}
        self.kinds = {k.pk: k for k in AppointmentType.objects.filter(clinic_id=ids["clinic"])}

    def by(self, n: int):
        return self.secretary if n % 2 else self.doctor


def setup_data() -> dict:
    """Migrate, seed the demo clinic and add PATIENTS patients for the demo doctor."""
    from django.core.management import call_command

    from consulta.accounts.demo import seed_demo
    from consulta.accounts.models import StaffMember
    from consulta.patients.models import Patient
    from consulta.scheduling.models import AppointmentType

    call_command("migrate", verbosity=0)
    demo = seed_demo(visits=0)
    doctor = demo.doctor
    secretary = StaffMember.objects.get(clinic=demo.clinic, role=StaffMember.Role.SECRETARY)
    created = Patient.objects.bulk_create(
        Patient(
            clinic=demo.clinic,
            doctor=doctor,
            first_name=f"Gara{n}",
            last_name="Prenotazione",
            # No email: a booking then sends no notification, so this measures the booking
            # and its race alone, not the rendering and queueing of emails after commit.
        )
        for n in range(PATIENTS)
    )
    kinds = {
        k.name: k.pk
        for k in AppointmentType.objects.filter(clinic=demo.clinic, clinician__isnull=True)
    }
    log(
        f"seeded: doctor {doctor} (#{doctor.pk}), secretary {secretary} (#{secretary.pk}), "
        f"{len(created)} patients, types {kinds}"
    )
    return {
        "clinic": demo.clinic.pk,
        "doctor": doctor.pk,
        "secretary": secretary.pk,
        "patients": [p.pk for p in created],
        "kinds": sorted(kinds.values()),
        "tz": demo.clinic.time_zone,
    }


def race(ids: dict, slot, attempts: int, outcomes: Outcomes) -> None:
    """`attempts` threads, each on its own connection, book `slot` at the same moment."""
    from django.db import connection

    from consulta.scheduling.services import SlotTaken, booking_create

    barrier = threading.Barrier(attempts)

    def attempt(n: int) -> None:
        try:
            actors = Actors(ids, [ids["patients"][n % len(ids["patients"])]])
            patient = next(iter(actors.patients.values()))
            kind = actors.kinds[slot.appointment_type_id]
            connection.ensure_connection()
            barrier.wait(timeout=120)
        except Exception as exc:
            barrier.abort()
            outcomes.error(f"race attempt {n}: before booking_create", exc)
            connection.close()
            return
        try:
            booking_create(
                by=actors.by(n),
                clinician=actors.doctor,
                patient=patient,
                kind=kind,
                starts_at=slot.starts_at,
            )
        except SlotTaken:
            outcomes.lose()
        except Exception as exc:
            outcomes.error(f"race attempt {n}: booking_create(by={actors.by(n)})", exc)
        else:
            outcomes.win()
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def part_races(ids: dict, races: int, attempts: int, last_day: date):
    """Returns (winners per race, losers, errors, seconds)."""
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from consulta.scheduling.models import Booking
    from consulta.scheduling.slots import free_slots

    tz = ZoneInfo(ids["tz"])
    first_day = timezone.localdate() + timedelta(days=1)
    winners, losers, errors = [], 0, []
    started = time.perf_counter()
    for r in range(races):
        kind_id = ids["kinds"][r % len(ids["kinds"])]
        free = free_slots(
            [ids["doctor"]], first_day, (last_day - first_day).days + 1, tz, type_ids=[kind_id]
        )
        if not free:
            raise SystemExit(f"race {r + 1}: no free slot left before {last_day}")
        slot = free[0]
        outcomes = Outcomes()
        race_started = time.perf_counter()
        race(ids, slot, attempts, outcomes)
        booked = Booking.objects.filter(
            clinician_id=ids["doctor"], starts_at=slot.starts_at, status=Booking.Status.BOOKED
        ).count()
        if booked != outcomes.won:
            outcomes.errors.append(
                (f"race {r + 1}", f"{outcomes.won} winners but {booked} bookings in the DB", "")
            )
        winners.append(outcomes.won)
        losers += outcomes.lost
        errors += outcomes.errors
        log(
            f"race {r + 1}/{races}: {slot.starts_at.astimezone(tz):%a %Y-%m-%d %H:%M} "
            f"type #{kind_id}: {outcomes.won} won, {outcomes.lost} SlotTaken, "
            f"{len(outcomes.errors)} errors ({time.perf_counter() - race_started:.2f}s)"
        )
    return winners, losers, errors, time.perf_counter() - started


def part_random(ids: dict, requests: int, threads: int, week_start: date):
    """Returns (winners, losers, errors, seconds)."""
    from zoneinfo import ZoneInfo

    from django.db import connection

    from consulta.scheduling.services import SlotTaken, booking_create
    from consulta.scheduling.slots import template_slots

    tz = ZoneInfo(ids["tz"])
    slots = template_slots([ids["doctor"]], week_start, 7, tz)
    log(
        f"random: {requests} requests, {threads} threads, {len(slots)} template slots in the "
        f"week of {week_start} (both types)"
    )
    rng = random.Random(SEED)
    plan = [
        (n, rng.choice(slots), rng.choice(ids["patients"]), rng.random() < 0.5)
        for n in range(requests)
    ]
    lock = threading.Lock()
    position = 0
    outcomes = Outcomes()
    progress_every = max(requests // 10, 1)
    started = time.perf_counter()

    def next_request():
        nonlocal position
        with lock:
            if position >= len(plan):
                return None
            item = plan[position]
            position += 1
            if position % progress_every == 0:
                log(
                    f"  {position}/{len(plan)} sent, {time.perf_counter() - started:.1f}s, "
                    f"{outcomes.won} won so far"
                )
            return item

    def worker() -> None:
        try:
            actors = Actors(ids, ids["patients"])
            while (item := next_request()) is not None:
                n, slot, patient_id, secretary = item
                by = actors.secretary if secretary else actors.doctor
                try:
                    booking_create(
                        by=by,
                        clinician=actors.doctor,
                        patient=actors.patients[patient_id],
                        kind=actors.kinds[slot.appointment_type_id],
                        starts_at=slot.starts_at,
                    )
                except SlotTaken:
                    outcomes.lose()
                except Exception as exc:
                    outcomes.error(
                        f"random request {n}: booking_create(by={by}, "
                        f"starts_at={slot.starts_at.isoformat()}, "
                        f"type #{slot.appointment_type_id})",
                        exc,
                    )
                else:
                    outcomes.win()
        except Exception as exc:
            outcomes.error("random worker: setup", exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    seconds = time.perf_counter() - started
    log(
        f"random: {outcomes.won} won, {outcomes.lost} SlotTaken, {len(outcomes.errors)} errors "
        f"in {seconds:.1f}s ({requests / seconds:,.0f} requests/s)"
    )
    return outcomes.won, outcomes.lost, outcomes.errors, seconds


def count_overlaps() -> int:
    """Pairs of active holds of one clinician whose times overlap (each pair once)."""
    from django.db import connection

    from consulta.scheduling.models import BookingHold

    table = connection.ops.quote_name(BookingHold._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {table} a JOIN {table} b "  # noqa: S608 - a model's table
            "ON a.clinician_id = b.clinician_id AND a.id < b.id "
            "AND tstzrange(a.starts_at, a.ends_at, '[)') "
            "&& tstzrange(b.starts_at, b.ends_at, '[)') "
            "WHERE a.active AND b.active"
        )
        return cursor.fetchone()[0]


def check_week(ids: dict, week_start: date, winners: int) -> list[tuple[str, str, str]]:
    """The bookings and active holds of the random week must be exactly the winners."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from consulta.scheduling.models import Booking, BookingHold

    tz = ZoneInfo(ids["tz"])
    since = datetime.combine(week_start, datetime.min.time(), tz)
    until = datetime.combine(week_start + timedelta(days=7), datetime.min.time(), tz)
    window = {"clinician_id": ids["doctor"], "starts_at__gte": since, "starts_at__lt": until}
    bookings = Booking.objects.filter(status=Booking.Status.BOOKED, **window).count()
    holds = BookingHold.objects.filter(active=True, **window).count()
    log(f"random week in the database: {bookings} bookings, {holds} active holds")
    if bookings == holds == winners:
        return []
    return [("random week", f"{winners} winners, {bookings} bookings, {holds} active holds", "")]


def report_errors(errors: list[tuple[str, str, str]]) -> None:
    if not errors:
        return
    log(f"{len(errors)} ERRORS:")
    for summary, count in Counter(s for _w, s, _t in errors).most_common():
        log(f"  {count} × {summary}")
    for where, summary, trace in errors[:TRACEBACKS_SHOWN]:
        log(f"--- {where}: {summary}\n{trace}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--races", type=int, default=20)
    parser.add_argument("--attempts", type=int, default=50)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()

    started = time.perf_counter()
    with _postgres_database(POSTGRES_URL) as database_url:
        os.environ.update(
            CONSULTA_ENV="demo",
            DATABASE_URL=database_url,
            DJANGO_SETTINGS_MODULE="consulta.settings",
            LOG_LEVEL="WARNING",
            # One pooled connection for every concurrent attempt (the default pool is 10),
            # so they all really run at once; plus the main thread's.
            DATABASE_POOL_SIZE=str(max(args.attempts, args.threads) + 2),
        )
        os.environ.pop("REDIS_URL", None)
        import django

        django.setup()
        from django.db import connection
        from django.utils import timezone

        ids = setup_data()
        today = timezone.localdate()
        # The random week is a whole Monday-to-Sunday week 1-2 weeks ahead; the races take
        # the first free slots from tomorrow, before it.
        week_start = today + timedelta(days=7 - today.weekday() + 7)
        log(f"fresh database, demo seeded in {time.perf_counter() - started:.1f}s")

        winners, race_losers, race_errors, race_seconds = part_races(
            ids, args.races, args.attempts, week_start - timedelta(days=1)
        )
        log(
            f"races: {race_seconds:.1f}s, winners per race {sorted(set(winners))}, "
            f"{race_losers} SlotTaken"
        )
        random_won, _random_lost, random_errors, _seconds = part_random(
            ids, args.requests, args.threads, week_start
        )
        overlaps = count_overlaps()
        log(f"overlapping pairs of active holds: {overlaps}")
        errors = race_errors + random_errors + check_week(ids, week_start, random_won)
        report_errors(errors)
        connection.close()
        connection.close_pool()

    emit(
        {
            "bench": "booking_race",
            "races": args.races,
            "attempts_per_race": args.attempts,
            "winners_per_race_max": max(winners, default=0),
            "winners_per_race_min": min(winners, default=0),
            "random_requests": args.requests,
            "random_winners": random_won,
            "overlaps": overlaps,
            "errors": len(errors),
            "seconds": round(time.perf_counter() - started, 1),
        }
    )


if __name__ == "__main__":
    main()
