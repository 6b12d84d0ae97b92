"""Double bookings under concurrency, on PostgreSQL: the exclusion constraint on active holds
(migration 0002) decides every race, and the services turn its refusal into SlotTaken.

These tests need the suite's database to be PostgreSQL (the PostgreSQL pass of
scripts/test.sh, DATABASE_URL=postgres://…). Without PostgreSQL they skip on a laptop and fail
with CI=true (tests/services.py); in the SQLite pass, which CI runs after the PostgreSQL one,
they skip. Each thread opens its own connection, so no test transaction wraps them
(`transaction=True`)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, connections, transaction

from consulta.scheduling import services
from consulta.scheduling.models import Booking, BookingHold
from tests.patients.conftest import add_patient
from tests.scheduling.conftest import NOW, WEDNESDAY, local
from tests.services import in_the_postgres_pass

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

NINE = local(WEDNESDAY, 9)
THREADS = 8


@pytest.fixture(autouse=True)
def on_postgres():
    in_the_postgres_pass()


def race(attempts):
    """Run the attempts in threads released at the same instant; return what each returned
    or raised."""
    barrier = threading.Barrier(len(attempts))

    def run(attempt):
        try:
            barrier.wait(timeout=30)
            return attempt()
        except Exception as error:  # noqa: BLE001 - the outcome is what we compare
            return error
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        return list(pool.map(run, attempts))


def assert_one_winner(outcomes):
    won = [o for o in outcomes if isinstance(o, Booking)]
    lost = [o for o in outcomes if not isinstance(o, Booking)]
    assert len(won) == 1, outcomes
    assert all(isinstance(o, services.SlotTaken) for o in lost), lost
    assert list(Booking.objects.values_list("pk", flat=True)) == [won[0].pk]
    assert list(BookingHold.objects.filter(active=True).values_list("booking", flat=True)) == [
        won[0].pk
    ]


def test_of_eight_staff_booking_one_slot_at_once_exactly_one_succeeds(cast, kind, open_calendar):
    patients = [add_patient(cast.doctor, "Paziente", f"N{n}") for n in range(THREADS)]

    outcomes = race(
        [
            lambda patient=patient: services.booking_create(
                by=cast.doctor,
                clinician=cast.doctor,
                patient=patient,
                kind=kind,
                starts_at=NINE,
                now=NOW,
            )
            for patient in patients
        ]
    )

    assert_one_winner(outcomes)


def test_of_eight_patients_booking_one_slot_online_at_once_exactly_one_succeeds(
    cast, kind, open_calendar
):
    patients = [add_patient(cast.doctor, "Paziente", f"N{n}") for n in range(THREADS)]

    outcomes = race(
        [
            lambda patient=patient: services.booking_book_online(
                patient=patient, clinician=cast.doctor, kind=kind, starts_at=NINE, now=NOW
            )
            for patient in patients
        ]
    )

    assert_one_winner(outcomes)


def waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_a_booking_racing_an_uncommitted_one_is_refused_by_the_exclusion_constraint(
    cast, kind, open_calendar, monkeypatch
):
    """The first booking has written its hold but not committed: the second one's look-up
    sees nothing, so only the database can refuse it. It waits for the first to commit, then
    gets SlotTaken."""
    first_took, release = threading.Event(), threading.Event()
    sync_visit = services._sync_visit

    def pause_the_first(booking, user):
        if threading.current_thread().name == "first":
            first_took.set()
            release.wait(timeout=30)
        return sync_visit(booking, user)

    monkeypatch.setattr(services, "_sync_visit", pause_the_first)
    outcomes = {}

    def attempt(name, patient):
        try:
            outcomes[name] = services.booking_create(
                by=cast.doctor,
                clinician=cast.doctor,
                patient=patient,
                kind=kind,
                starts_at=NINE,
                now=NOW,
            )
        except Exception as error:  # noqa: BLE001
            outcomes[name] = error
        finally:
            connections.close_all()

    threads = {
        name: threading.Thread(target=attempt, args=(name, patient), name=name)
        for name, patient in (("first", cast.patient), ("second", cast.patient_of_doctor2))
    }
    threads["first"].start()
    try:
        assert first_took.wait(timeout=30)
        threads["second"].start()
        deadline = time.monotonic() + 15
        while not waiting_on_a_lock() and threads["second"].is_alive():
            assert time.monotonic() < deadline, "the second booking never waited for the first"
            time.sleep(0.05)
        assert threads["second"].is_alive(), outcomes.get("second")
    finally:
        release.set()
        for thread in threads.values():
            thread.join(timeout=30)

    assert isinstance(outcomes["first"], Booking), outcomes
    assert isinstance(outcomes["second"], services.SlotTaken), outcomes
    assert Booking.objects.get().patient == cast.patient


def test_the_database_refuses_overlapping_active_holds_of_one_clinician(cast, kind, open_calendar):
    first = services.booking_create(
        by=cast.doctor,
        clinician=cast.doctor,
        patient=cast.patient,
        kind=kind,
        starts_at=NINE,
        now=NOW,
    )
    second = services.booking_create(
        by=cast.doctor,
        clinician=cast.doctor,
        patient=cast.patient_of_doctor2,
        kind=kind,
        starts_at=NINE + timedelta(minutes=20),
        now=NOW,
    )
    hold = BookingHold.objects.get(booking=second)

    # Touching is fine (half-open ranges); overlapping is not.
    with pytest.raises(IntegrityError), transaction.atomic():
        BookingHold.objects.filter(pk=hold.pk).update(starts_at=NINE + timedelta(minutes=10))
    # Inactive holds (cancelled bookings) and other clinicians' holds may overlap.
    BookingHold.objects.filter(booking=first).update(active=False)
    BookingHold.objects.filter(pk=hold.pk).update(starts_at=NINE + timedelta(minutes=10))
    BookingHold.objects.create(
        booking=first, clinician=cast.doctor2, starts_at=NINE, ends_at=hold.ends_at
    )
