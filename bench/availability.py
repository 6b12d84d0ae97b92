"""Free slots of a group practice: p95 of "Find a free time" (/calendar/free/) through the
real view, for one clinician over 4 weeks and for the whole group over 1 week, with 20
clinicians whose work plans cover those 4 weeks and 30% of whose time is booked, against a
real deployment (PostgreSQL + Redis, one process, CONSULTA_ENV=demo). The calendar's own week
and group-day views are timed too and reported apart.

    uv run python bench/availability.py [--requests N] [--clinicians N] [--json-out PATH]
                                        [--page-requests N] [--profile]

Progress goes to stderr; the last line on stdout is one JSON object (see bench/README.md).
Target: p95_ms <= 50.
"""

import argparse
import cProfile
import functools
import io
import os
import pstats
import random
import statistics
import sys
import time
from bisect import bisect_left
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.common import emit, log, percentile, rounded  # noqa: E402
from bench.patients_search import (  # noqa: E402
    FIRST_NAMES_F,
    FIRST_NAMES_M,
    SURNAMES,
    Client,
    generate_patients,
    sign_in,
)
from tests.browser.server import running_deployment, server_logs  # noqa: E402
from tests.services import POSTGRES_URL, REDIS_URL  # noqa: E402

SEED = 20261123
WARMUP = 10
WEEKS = 4
BOOKED_SHARE = 0.3
PATIENTS_PER_CLINICIAN = 10
GROUP_NAME = "Medicina di gruppo Demo"
TYPE_NAMES = ("Visita ambulatoriale", "Videoconsulto")
FETCH = {"X-Requested-With": "fetch"}
PROFILE_RUNS = 20


# --- Seeding (setup, not measured) --------------------------------------------------------


def django_setup(env: dict[str, str]) -> None:
    """Django in this process, on the deployment's database and Redis (as the server runs)."""
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "consulta.settings"
    import django

    django.setup()


def next_monday(today: date) -> date:
    """The first Monday after today: every slot of the 4 weeks is in the future."""
    return today + timedelta(days=7 - today.weekday())


def _doctor_names(count: int, taken: set[tuple[str, str]], rng: random.Random):
    surnames = [s.replace("_", " ") for s in SURNAMES]
    names = []
    while len(names) < count:
        name = (rng.choice(FIRST_NAMES_F + FIRST_NAMES_M), rng.choice(surnames))
        if name not in taken:
            taken.add(name)
            names.append(name)
    return names


def _add_doctors(clinic, admin, count: int, kinds, rng: random.Random) -> list:
    """`count` doctors with users, calendars open online and the demo's week template, made
    through the services as the demo seeds its own two."""
    from consulta.accounts.models import StaffMember, User
    from consulta.scheduling import services
    from consulta.scheduling.demo import WEEK

    taken = set(
        StaffMember.objects.filter(clinic=clinic).values_list("user__first_name", "user__last_name")
    )
    added = []
    for n, (first, last) in enumerate(_doctor_names(count, taken, rng), start=1):
        user = User.objects.create_user(
            f"medico{n:02d}@demo.consulta.test", None, first_name=first, last_name=last
        )
        doctor = StaffMember.objects.create(
            user=user, clinic=clinic, role=StaffMember.Role.DOCTOR, title="Dr."
        )
        services.calendar_set_online(by=admin, clinician=doctor, online=True)
        template = services.week_template_create(by=admin, clinician=doctor, name="Settimana tipo")
        for weekday, start, end in WEEK:
            services.template_block_add(
                by=admin,
                template=template,
                weekday=weekday,
                start_time=start,
                end_time=end,
                types=kinds,
            )
        added.append(doctor)
    return added


def _plan(admin, doctors, first: date, last: date) -> None:
    """Every doctor's calendar online, with a work plan covering first..last (the demo's two
    doctors already have one, from a week ago to four months ahead)."""
    from consulta.scheduling import services
    from consulta.scheduling.models import WorkPlan

    for doctor in doctors:
        services.calendar_set_online(by=admin, clinician=doctor, online=True)
        covered = WorkPlan.objects.filter(
            clinician=doctor, start_date__lte=first, end_date__gte=last
        ).exists()
        if not covered:
            services.work_plan_create(
                by=admin,
                clinician=doctor,
                template=doctor.week_templates.order_by("pk").first(),
                start_date=first,
                end_date=last,
            )


def _add_patients(clinic, doctors, rng: random.Random) -> dict[int, list]:
    """PATIENTS_PER_CLINICIAN active patients per doctor (valid codici fiscali)."""
    from consulta.patients.models import Patient

    taken = set(Patient.objects.filter(clinic=clinic).values_list("national_id", flat=True))
    wanted = PATIENTS_PER_CLINICIAN * len(doctors)
    fresh = [
        p
        for p in generate_patients(wanted * 2, rng)
        if p["archive_reason"] == "" and p["national_id"] not in taken
    ][:wanted]
    created = Patient.objects.bulk_create(
        Patient(
            clinic=clinic,
            doctor=doctors[n % len(doctors)],
            first_name=p["first_name"],
            last_name=p["last_name"],
            national_id=p["national_id"],
            date_of_birth=p["date_of_birth"],
            email=p["email"],
            phone=p["phone"],
            state=p["state"],
        )
        for n, p in enumerate(fresh)
    )
    by_doctor: dict[int, list] = defaultdict(list)
    for patient in created:
        by_doctor[patient.doctor_id].append(patient)
    return by_doctor


def _working_seconds(slots) -> float:
    """The length of the union of the slots' intervals: the clinician's working time."""
    total, end = 0.0, None
    for slot in sorted(slots, key=lambda s: s.starts_at):
        if end is None or slot.starts_at >= end:
            total += (slot.ends_at - slot.starts_at).total_seconds()
            end = slot.ends_at
        elif slot.ends_at > end:
            total += (slot.ends_at - end).total_seconds()
            end = slot.ends_at
    return total


def _pick_bookings(slots, share: float, rng: random.Random) -> tuple[list, float]:
    """Random template slots (of either type) that do not overlap one another, until they
    take `share` of the working time. Returns them and the share actually booked."""
    working = _working_seconds(slots)
    taken: list[tuple[datetime, datetime]] = []  # sorted, non-overlapping
    picked, booked = [], 0.0
    for slot in rng.sample(slots, len(slots)):
        if booked >= share * working:
            break
        i = bisect_left(taken, (slot.starts_at, slot.ends_at))
        if i < len(taken) and taken[i][0] < slot.ends_at:
            continue
        if i > 0 and taken[i - 1][1] > slot.starts_at:
            continue
        taken.insert(i, (slot.starts_at, slot.ends_at))
        picked.append(slot)
        booked += (slot.ends_at - slot.starts_at).total_seconds()
    return picked, booked / working if working else 0.0


def _book(clinic, secretary, doctors, patients, first: date, tz: ZoneInfo, rng: random.Random):
    """Book BOOKED_SHARE of each doctor's working time over the WEEKS weeks, in bulk and
    consistent with booking_create(): a booking, one active hold for its clinician with the
    same times, and a visit room for a video booking."""
    from consulta.scheduling.models import AppointmentType, Booking, BookingHold
    from consulta.scheduling.slots import template_slots
    from consulta.visits.models import Visit

    kinds = {k.pk: k for k in AppointmentType.objects.filter(clinic=clinic)}
    bookings, visits, shares, template_count = [], [], [], 0
    for doctor in doctors:
        slots = template_slots([doctor.pk], first, WEEKS * 7, tz)
        template_count += len(slots)
        picked, share = _pick_bookings(slots, BOOKED_SHARE, rng)
        shares.append(share)
        for slot in picked:
            kind = kinds[slot.appointment_type_id]
            patient = rng.choice(patients[doctor.pk])
            visit = None
            if kind.default_contact_mode == "video":
                visit = Visit(
                    clinic=clinic,
                    patient=patient,
                    doctor=doctor,
                    scheduled_at=slot.starts_at,
                    created_by=secretary.user,
                )
                visits.append(visit)
            bookings.append(
                Booking(
                    clinic=clinic,
                    clinician=doctor,
                    patient=patient,
                    appointment_type=kind,
                    contact_mode=kind.default_contact_mode,
                    starts_at=slot.starts_at,
                    ends_at=slot.ends_at,
                    source=Booking.Source.STAFF,
                    visit=visit,
                    booked_by=secretary.user,
                )
            )
    Visit.objects.bulk_create(visits, batch_size=2000)
    Booking.objects.bulk_create(bookings, batch_size=2000)
    # On PostgreSQL the exclusion constraint checks these holds never overlap.
    BookingHold.objects.bulk_create(
        (
            BookingHold(
                booking=b,
                clinician_id=b.clinician_id,
                starts_at=b.starts_at,
                ends_at=b.ends_at,
                active=True,
            )
            for b in bookings
        ),
        batch_size=2000,
    )
    return len(bookings), len(visits), template_count, statistics.fmean(shares)


def seed_group(deployment, clinicians: int, rng: random.Random) -> dict:
    """The demo clinic grown to `clinicians` doctors in its group practice (with the demo
    secretary), their work plans over the next WEEKS weeks and BOOKED_SHARE of it booked."""
    t0 = time.perf_counter()
    seed = deployment.seed_visits(0)
    django_setup(deployment.env)
    from django.db import connections, transaction

    from consulta.accounts.demo import DEMO_CLINIC
    from consulta.accounts.models import CareTeam, Clinic, StaffMember

    clinic = Clinic.objects.get(name=DEMO_CLINIC)
    tz = ZoneInfo(clinic.time_zone)
    staff = StaffMember.objects.filter(clinic=clinic).select_related("user", "clinic")
    admin = staff.get(role=StaffMember.Role.CLINIC_ADMIN)
    secretary = staff.get(role=StaffMember.Role.SECRETARY)
    kinds = list(clinic.appointment_types.filter(clinician__isnull=True, name__in=TYPE_NAMES))
    if len(kinds) != len(TYPE_NAMES):
        raise RuntimeError(f"the demo clinic's appointment types are not {TYPE_NAMES}")
    first = next_monday(datetime.now(tz).date())
    last = first + timedelta(days=WEEKS * 7 - 1)
    with transaction.atomic():
        doctors = list(staff.filter(role=StaffMember.Role.DOCTOR).order_by("pk"))[:clinicians]
        doctors += _add_doctors(clinic, admin, clinicians - len(doctors), kinds, rng)
        team = CareTeam.objects.get(clinic=clinic, name=GROUP_NAME, kind=CareTeam.Kind.GROUP)
        team.members.add(*doctors, secretary)
        _plan(admin, doctors, first, last)
        patients = _add_patients(clinic, doctors, rng)
        booked, visits, template_count, share = _book(
            clinic, secretary, doctors, patients, first, tz, rng
        )
    connections.close_all()
    with psycopg.connect(deployment.env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    log(
        f"seeded {len(doctors)} clinicians in {GROUP_NAME!r} with the secretary, work plans "
        f"{first}..{last}: {template_count} template slots (both types), {booked} bookings "
        f"({visits} video, with their visit rooms) taking {share:.1%} of the working time, "
        f"{sum(len(p) for p in patients.values())} patients, "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    return {
        "links": seed["links"],
        "secretary_user_id": secretary.user_id,
        "doctor_ids": [d.pk for d in doctors],
        "first_monday": first,
        "booked_share": share,
    }


# --- The benchmark -------------------------------------------------------------------------


def one_clinician_path(doctor_id: int, start: date) -> str:
    """Find a free time: one clinician, four weeks."""
    return f"/calendar/free/?doctor={doctor_id}&start={start.isoformat()}&days={WEEKS * 7}"


def group_path(monday: date) -> str:
    """Find a free time: every clinician of the group, one week."""
    return f"/calendar/free/?start={monday.isoformat()}&days=7"


def grid_week_path(doctor_id: int, monday: date) -> str:
    """The calendar's week view of one clinician (bookings and free slots)."""
    return f"/calendar/?doctor={doctor_id}&start={monday.isoformat()}&days=7"


def grid_group_day_path(day: date) -> str:
    """The calendar's day view, every clinician side by side."""
    return f"/calendar/?group=1&start={day.isoformat()}&days=1"


def timed_get(client: Client, path: str, expect: bytes, fetch: bool = True) -> tuple[float, bytes]:
    """GET a page (its fragment, with `fetch`); the time to the last byte."""
    t0 = time.perf_counter()
    status, _, body = client.get(path, headers=FETCH if fetch else None)
    elapsed = (time.perf_counter() - t0) * 1000
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status}")
    if expect not in body:
        raise RuntimeError(f"GET {path}: no {expect!r} in the response")
    return elapsed, body


def measure(client: Client, setup: dict, requests: int, page_requests: int, rng) -> dict:
    doctors, first = setup["doctor_ids"], setup["first_monday"]
    mondays = [first + timedelta(weeks=w) for w in range(WEEKS)]
    days = [first + timedelta(days=d) for d in range(WEEKS * 7) if d % 7 < 5]
    free, grid = b'class="free-day"', b'class="calendar-grid"'
    kinds = {
        "one": (lambda: one_clinician_path(rng.choice(doctors), first), free),
        "group": (lambda: group_path(rng.choice(mondays)), free),
        "grid_week": (lambda: grid_week_path(rng.choice(doctors), rng.choice(mondays)), grid),
        "grid_group_day": (lambda: grid_group_day_path(rng.choice(days)), grid),
    }
    for i in range(WARMUP):
        path, expect = kinds["one" if i % 2 == 0 else "group"]
        timed_get(client, path(), expect)
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    sizes: dict[str, int] = {}
    group_body = b""
    for i in range(1, requests + 1):
        for kind in ("one", "group"):
            path, expect = kinds[kind]
            elapsed, body = timed_get(client, path(), expect)
            samples[kind].append(elapsed)
            sizes[kind] = len(body)
            if kind == "group" and not group_body:
                group_body = body
        if i % 20 == 0 or i == requests:
            log(
                f"{i}/{requests} pairs: one clinician 4 weeks {samples['one'][-1]:.1f} ms, "
                f"group 1 week {samples['group'][-1]:.1f} ms"
            )
    # The calendar's own views (bookings and free slots, as the page refetches them), apart
    # from p95_ms.
    for _ in range(page_requests):
        for kind in ("grid_week", "grid_group_day"):
            path, expect = kinds[kind]
            elapsed, body = timed_get(client, path(), expect)
            samples[kind].append(elapsed)
            sizes[kind] = len(body)
    log("response sizes (bytes): " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    for kind, values in samples.items():
        if values:
            log(
                f"{kind}: p50 {percentile(values, 50):.1f} ms, p95 {percentile(values, 95):.1f} "
                f"ms, min {min(values):.1f} ms ({len(values)} requests)"
            )
    return {"samples": samples, "slots_per_group_week": group_body.count(b'class="slot')}


# --- Where the time of one group request goes (in process, --profile) -----------------------


class Phases:
    """Wall time of some functions of the request, and the SQL run inside each (attributed
    to the innermost one), from wrappers around module attributes: nothing in the app
    changes, the wrappers are this process's only."""

    # Each phase and the phases nested in it.
    TREE = {
        "request": ("free_slots", "render_free_times"),
        "free_slots": ("template_slots", "busy_times"),
        "template_slots": (),
        "busy_times": (),
        "render_free_times": (),
    }

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.stack: list[str] = []
        self.wall: dict[str, float] = defaultdict(float)
        self.sql: dict[str, float] = defaultdict(float)
        self.queries: dict[str, int] = defaultdict(int)

    def wrap(self, module, name: str) -> None:
        original = getattr(module, name)

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            self.stack.append(name)
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.wall[name] += time.perf_counter() - t0
                self.stack.pop()

        setattr(module, name, wrapper)

    def execute(self, execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            label = self.stack[-1] if self.stack else "request"
            self.sql[label] += time.perf_counter() - t0
            self.queries[label] += 1

    def breakdown(self) -> dict[str, dict[str, float]]:
        """Per phase: its SQL and its own Python (wall minus nested phases minus SQL), ms."""
        rows = {}
        for phase, nested in self.TREE.items():
            inner = sum(self.wall[n] for n in nested)
            rows[phase] = {
                "sql_ms": self.sql[phase] * 1000,
                "python_ms": (self.wall[phase] - inner - self.sql[phase]) * 1000,
                "queries": self.queries[phase],
            }
        return rows


def profile_group(setup: dict, runs: int) -> dict:
    """The group week's free times, in this process through Django's test client (the whole
    middleware stack, WSGI instead of ASGI), timed by phase; then cProfile's top functions."""
    from django.db import connection
    from django.test import Client as DjangoClient

    from consulta.accounts.models import User
    from consulta.scheduling import slots, views

    client = DjangoClient(HTTP_HOST="127.0.0.1")
    client.force_login(User.objects.get(pk=setup["secretary_user_id"]))
    path = group_path(setup["first_monday"])
    for _ in range(5):
        response = client.get(path, headers=FETCH)
        assert response.status_code == 200
        assert b'class="free-day"' in response.content
    phases = Phases()
    for module, name in (
        (views, "free_slots"),
        (slots, "template_slots"),
        (slots, "busy_times"),
        (views, "render_free_times"),
    ):
        phases.wrap(module, name)
    runs_out: list[dict] = []
    for _ in range(runs):
        phases.reset()
        with connection.execute_wrapper(phases.execute):
            t0 = time.perf_counter()
            client.get(path, headers=FETCH)
            phases.wall["request"] = time.perf_counter() - t0
        rows = phases.breakdown()
        rows["request"]["total_ms"] = phases.wall["request"] * 1000
        runs_out.append(rows)

    def median(phase: str, key: str) -> float:
        return round(statistics.median(r[phase][key] for r in runs_out), 2)

    table = {
        phase: {key: median(phase, key) for key in runs_out[0][phase]} for phase in Phases.TREE
    }
    total = table["request"]["total_ms"]
    sql = round(sum(table[p]["sql_ms"] for p in table), 2)
    log(f"in process, group week {path}, median of {runs} requests: {total:.1f} ms, of which")
    labels = {
        "request": "middleware, session, user, staff, care teams, doctors (the rest)",
        "template_slots": "slots.template_slots (work plans, blocks, types; slots laid out)",
        "busy_times": "slots.busy_times (active holds as intervals)",
        "free_slots": "slots.free_slots itself (overlap filter)",
        "render_free_times": "render_free_times(): the list of links",
    }
    for phase, label in labels.items():
        r = table[phase]
        log(
            f"  {label}: SQL {r['sql_ms']:.1f} ms ({r['queries']:.0f} queries), "
            f"Python {r['python_ms']:.1f} ms"
        )
    log(f"  SQL in all: {sql:.1f} ms")

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(5):
        client.get(path, headers=FETCH)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    log(f"cProfile, 5 group-week requests:\n{out.getvalue()}")

    def part(*phases_: str, key: str) -> float:
        return round(sum(table[p][key] for p in phases_), 1)

    return {
        "total_ms": round(total, 1),
        "sql_ms": round(sql, 1),
        "queries": int(sum(table[p]["queries"] for p in table)),
        "slots_python_ms": part("template_slots", "busy_times", "free_slots", key="python_ms"),
        "slots_sql_ms": part("template_slots", "busy_times", key="sql_ms"),
        "render_ms": part("render_free_times", key="python_ms"),
        "rest_ms": round(table["request"]["python_ms"] + table["request"]["sql_ms"], 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=100, help="requests of each kind (default 100)"
    )
    parser.add_argument(
        "--clinicians", type=int, default=20, help="doctors in the group (default 20)"
    )
    parser.add_argument(
        "--page-requests",
        type=int,
        default=20,
        help="calendar week and group-day views, reported apart (default 20)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also time the group week in process, by phase, and print cProfile's top",
    )
    parser.add_argument("--json-out", type=Path, help="also write the JSON line to this file")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.clinicians < 2 or args.page_requests < 0:
        parser.error("--requests must be at least 1, --clinicians at least 2")
    rng = random.Random(SEED)

    with running_deployment(
        "bench", processes=1, postgres_url=POSTGRES_URL, redis_url=REDIS_URL, consulta_env="demo"
    ) as deployment:
        base = deployment.urls[0]
        log(f"deployment up at {base}; seeding {args.clinicians} clinicians over {WEEKS} weeks")
        client = Client(base)
        try:
            setup = seed_group(deployment, args.clinicians, rng)
            sign_in(client, setup["links"]["secretary"])
            log("signed in as the demo secretary")
            measured = measure(client, setup, args.requests, args.page_requests, rng)
            profile = profile_group(setup, PROFILE_RUNS) if args.profile else None
        except Exception:
            log(server_logs(deployment))
            raise
        finally:
            client.close()
            if "django" in sys.modules:
                from django.db import connections

                connections.close_all()

    samples = measured["samples"]
    both = samples["one"] + samples["group"]
    result = {
        "bench": "availability",
        "clinicians": args.clinicians,
        "weeks": WEEKS,
        "booked_share": round(setup["booked_share"], 2),
        "requests": len(both),
        "p50_ms": rounded(percentile(both, 50)),
        "p95_ms": rounded(percentile(both, 95)),
        "p95_one_clinician_4_weeks_ms": rounded(percentile(samples["one"], 95)),
        "p95_group_1_week_ms": rounded(percentile(samples["group"], 95)),
        "slots_per_group_week": measured["slots_per_group_week"],
        "p95_calendar_week_ms": rounded(percentile(samples["grid_week"], 95)),
        "p95_calendar_group_day_ms": rounded(percentile(samples["grid_group_day"], 95)),
    }
    if profile is not None:
        result["profile_group_1_week"] = profile
    emit(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
