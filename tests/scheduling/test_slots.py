"""Slot generation: week templates in local wall-clock time, applied by work plans to dates,
minus absences and the time bookings hold."""

from collections import defaultdict
from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from consulta.scheduling import services
from consulta.scheduling.slots import free_slots, template_slots
from tests.scheduling.conftest import (
    EVERY_DAY,
    MONDAY,
    NOW,
    ROME,
    local,
    local_times,
    make_plan,
    make_type,
)

pytestmark = pytest.mark.django_db

# The last Sundays of March and October, when clocks change in Europe.
SPRING_FORWARD_2027 = date(2027, 3, 28)
FALL_BACK_2026 = date(2026, 10, 25)
FALL_BACK_2027 = date(2027, 10, 31)
ZONES = ["Europe/Rome", "Europe/Oslo"]
WINTER, SUMMER = timedelta(hours=1), timedelta(hours=2)


def by_local_day(slots, tz):
    days = defaultdict(list)
    for slot in slots:
        days[slot.starts_at.astimezone(tz).date()].append(slot)
    return days


def in_zone(cast, zone: str) -> ZoneInfo:
    cast.clinic.time_zone = zone
    cast.clinic.save(update_fields=["time_zone"])
    return services.clinic_tz(cast.clinic)


def test_a_three_hour_block_of_twenty_minute_visits_gives_nine_slots_a_day(cast, kind):
    make_plan(cast.doctor, cast.doctor, [kind], MONDAY, MONDAY + timedelta(days=4))

    slots = template_slots([cast.doctor.pk], MONDAY, 5, ROME)

    days = by_local_day(slots, ROME)
    assert sorted(days) == [MONDAY + timedelta(days=n) for n in range(5)]
    for day, day_slots in days.items():
        assert [f"{s.starts_at.astimezone(ROME):%H:%M}" for s in day_slots] == [
            "09:00",
            "09:20",
            "09:40",
            "10:00",
            "10:20",
            "10:40",
            "11:00",
            "11:20",
            "11:40",
        ], day
        assert all(s.ends_at - s.starts_at == timedelta(minutes=20) for s in day_slots)
        assert all(s.appointment_type_id == kind.pk for s in day_slots)
    assert all(s.starts_at.utcoffset() == timedelta(0) for s in slots)  # they leave in UTC


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(
    ("change", "before", "after"),
    [
        pytest.param(SPRING_FORWARD_2027, WINTER, SUMMER, id="spring-2027"),
        pytest.param(FALL_BACK_2026, SUMMER, WINTER, id="autumn-2026"),
        pytest.param(FALL_BACK_2027, SUMMER, WINTER, id="autumn-2027"),
    ],
)
def test_slots_stay_at_nine_local_time_across_a_daylight_saving_change(
    cast, kind, zone, change, before, after
):
    tz = in_zone(cast, zone)
    first = change - timedelta(days=6)
    make_plan(
        cast.doctor, cast.doctor, [kind], first, change + timedelta(days=6), weekdays=EVERY_DAY
    )

    days = by_local_day(template_slots([cast.doctor.pk], first, 13, tz), tz)

    assert sorted(days) == [first + timedelta(days=n) for n in range(13)]
    for day, day_slots in days.items():
        wall = [s.starts_at.astimezone(tz) for s in day_slots]
        assert len(wall) == 9, day
        assert wall[0].time() == time(9, 0), day
        assert wall[-1].time() == time(11, 40), day
        # The clocks change in the night: the Sunday's 09:00 already has the new offset.
        expected = before if day < change else after
        assert {w.utcoffset() for w in wall} == {expected}, day
        assert day_slots[0].starts_at.hour == 9 - expected.seconds // 3600, day
    # In UTC, 09:00 moves by an hour from one side of the change to the other.
    saturday, monday = change - timedelta(days=1), change + timedelta(days=1)
    assert days[saturday][0].starts_at.time() != days[monday][0].starts_at.time()


@pytest.mark.parametrize("zone", ZONES)
def test_a_block_over_the_skipped_hour_gives_no_slot_at_times_that_do_not_exist(cast, kind, zone):
    tz = in_zone(cast, zone)
    sunday = SPRING_FORWARD_2027
    make_plan(
        cast.doctor,
        cast.doctor,
        [kind],
        sunday - timedelta(days=7),
        sunday,
        weekdays=[6],
        opens=time(1, 30),
        closes=time(3, 30),
    )

    slots = template_slots([cast.doctor.pk], sunday - timedelta(days=7), 8, tz)
    days = by_local_day(slots, tz)

    # An ordinary Sunday: six slots. The night 02:00 becomes 03:00: 02:10, 02:30 and 02:50
    # do not exist.
    assert local_times(days[sunday - timedelta(days=7)], tz) == [
        f"{sunday - timedelta(days=7)} {hhmm}"
        for hhmm in ("01:30", "01:50", "02:10", "02:30", "02:50", "03:10")
    ]
    assert local_times(days[sunday], tz) == [
        f"{sunday} 01:30",
        f"{sunday} 01:50",
        f"{sunday} 03:10",
    ]
    for earlier, later in zip(days[sunday], days[sunday][1:], strict=False):
        assert earlier.ends_at <= later.starts_at


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("sunday", [FALL_BACK_2026, FALL_BACK_2027])
def test_slots_in_the_hour_repeated_in_autumn_appear_once_and_do_not_overlap(
    cast, kind, zone, sunday
):
    tz = in_zone(cast, zone)
    make_plan(
        cast.doctor,
        cast.doctor,
        [kind],
        sunday,
        sunday,
        weekdays=[6],
        opens=time(1, 30),
        closes=time(3, 30),
    )

    slots = template_slots([cast.doctor.pk], sunday, 1, tz)

    assert local_times(slots, tz) == [
        f"{sunday} {hhmm}" for hhmm in ("01:30", "01:50", "02:10", "02:30", "02:50", "03:10")
    ]
    for earlier, later in zip(slots, slots[1:], strict=False):
        assert earlier.ends_at <= later.starts_at


def test_absences_remove_their_days_both_included(cast, kind):
    make_plan(cast.doctor, cast.doctor, [kind], MONDAY, MONDAY + timedelta(days=4))
    services.absence_create(
        by=cast.doctor,
        clinician=cast.doctor,
        start_date=MONDAY + timedelta(days=1),
        end_date=MONDAY + timedelta(days=2),
        reason="Congresso",
    )

    days = by_local_day(template_slots([cast.doctor.pk], MONDAY, 5, ROME), ROME)

    assert sorted(days) == [MONDAY, MONDAY + timedelta(days=3), MONDAY + timedelta(days=4)]


def test_an_absence_of_another_doctor_leaves_the_calendar_alone(cast, kind):
    make_plan(cast.doctor, cast.doctor, [kind], MONDAY, MONDAY)
    services.absence_create(
        by=cast.doctor2, clinician=cast.doctor2, start_date=MONDAY, end_date=MONDAY
    )

    assert len(template_slots([cast.doctor.pk], MONDAY, 1, ROME)) == 9


def test_a_work_plan_covers_its_first_and_last_day(cast, kind):
    first, last = MONDAY + timedelta(days=1), MONDAY + timedelta(days=3)
    make_plan(cast.doctor, cast.doctor, [kind], first, last, weekdays=EVERY_DAY)

    days = by_local_day(
        template_slots([cast.doctor.pk], MONDAY - timedelta(days=3), 10, ROME), ROME
    )

    assert sorted(days) == [first, first + timedelta(days=1), last]


def test_a_booked_hold_removes_only_the_overlapping_slots_of_every_type(
    cast, kind, video, open_calendar
):
    make_plan(cast.doctor2, cast.doctor2, [kind, video], MONDAY, MONDAY)
    all_slots = template_slots([cast.doctor.pk, cast.doctor2.pk], MONDAY, 1, ROME)
    services.booking_create(
        by=cast.doctor,
        clinician=cast.doctor,
        patient=cast.patient,
        kind=kind,
        starts_at=local(MONDAY, 9, 20),
        now=NOW,
    )

    free = free_slots([cast.doctor.pk, cast.doctor2.pk], MONDAY, 1, ROME, not_before=NOW)

    removed = {
        (s.clinician_id, s.appointment_type_id, f"{s.starts_at.astimezone(ROME):%H:%M}")
        for s in set(all_slots) - set(free)
    }
    # The visit holds 09:20-09:40: the 20-minute slot at 09:20 and the 15-minute slots at
    # 09:15 and 09:30 overlap it; 09:00-09:15 and 09:45-10:00 only touch it.
    assert removed == {
        (cast.doctor.pk, kind.pk, "09:20"),
        (cast.doctor.pk, video.pk, "09:15"),
        (cast.doctor.pk, video.pk, "09:30"),
    }


def test_a_cancelled_booking_holds_no_time(cast, kind, open_calendar):
    booking = services.booking_create(
        by=cast.doctor,
        clinician=cast.doctor,
        patient=cast.patient,
        kind=kind,
        starts_at=local(MONDAY, 9, 20),
        now=NOW,
    )
    services.booking_cancel(booking=booking, by=cast.doctor, now=NOW)

    free = free_slots([cast.doctor.pk], MONDAY, 1, ROME, type_ids=[kind.pk], not_before=NOW)

    assert len(free) == 9


def test_free_slots_leave_out_the_times_before_not_before(cast, kind, open_calendar):
    free = free_slots(
        [cast.doctor.pk], MONDAY, 1, ROME, type_ids=[kind.pk], not_before=local(MONDAY, 10)
    )

    assert local_times(free) == [
        f"{MONDAY} {hhmm}" for hhmm in ("10:00", "10:20", "10:40", "11:00", "11:20", "11:40")
    ]


def test_free_slots_leave_out_the_times_after_not_after(cast, kind, open_calendar):
    free = free_slots(
        [cast.doctor.pk],
        MONDAY,
        1,
        ROME,
        type_ids=[kind.pk],
        not_before=NOW,
        not_after=local(MONDAY, 9, 40),
    )

    assert local_times(free) == [f"{MONDAY} 09:00", f"{MONDAY} 09:20", f"{MONDAY} 09:40"]


def test_free_slots_are_never_in_the_past(cast, kind):
    past_monday = date(2025, 3, 3)
    make_plan(cast.doctor, cast.doctor, [kind], past_monday, past_monday)

    assert len(template_slots([cast.doctor.pk], past_monday, 1, ROME)) == 9
    assert free_slots([cast.doctor.pk], past_monday, 1, ROME) == []


def test_a_booking_reaching_past_the_last_slot_of_the_range_hides_the_slots_it_overlaps(cast):
    """The range of holds looked up must reach the latest slot end, not the end of the slot
    that starts last: here the hour-long slot at 11:00 ends after the 25-minute slot at
    11:30 that starts last."""
    hour = make_type(cast.clinic_admin, name="Prima visita", duration_minutes=60)
    short = make_type(cast.clinic_admin, name="Controllo", duration_minutes=25)
    make_plan(cast.doctor, cast.doctor, [hour, short], MONDAY, MONDAY)
    services.booking_create(
        by=cast.doctor,
        clinician=cast.doctor,
        patient=cast.patient,
        kind=short,
        starts_at=local(MONDAY, 11, 55),
        outside_hours=True,
        now=NOW,
    )

    free = free_slots([cast.doctor.pk], MONDAY, 1, ROME, not_before=NOW)

    # 11:00-12:00 overlaps the booking at 11:55-12:20.
    hours = [s for s in free if s.appointment_type_id == hour.pk]
    assert local_times(hours) == [f"{MONDAY} 09:00", f"{MONDAY} 10:00"]


# --- Days given one appointment type ----------------------------------------------------------


def test_a_day_given_one_type_offers_only_that_type_in_every_block(cast, kind, video):
    vaccination = make_type(cast.clinic_admin, name="Vaccino", duration_minutes=10)
    make_plan(cast.doctor, cast.doctor, [kind, video], MONDAY, MONDAY + timedelta(days=1))
    services.day_type_set(by=cast.doctor, clinician=cast.doctor, day=MONDAY, kind=vaccination)

    days = by_local_day(template_slots([cast.doctor.pk], MONDAY, 2, ROME), ROME)

    assert {s.appointment_type_id for s in days[MONDAY]} == {vaccination.pk}
    assert len(days[MONDAY]) == 18  # 09:00-12:00 in ten-minute slots
    assert {s.appointment_type_id for s in days[MONDAY + timedelta(days=1)]} == {
        kind.pk,
        video.pk,
    }
    assert template_slots([cast.doctor.pk], MONDAY, 1, ROME, type_ids=[kind.pk]) == []


def test_clearing_a_days_type_brings_back_the_template(cast, kind, video):
    make_plan(cast.doctor, cast.doctor, [kind], MONDAY, MONDAY)
    services.day_type_set(by=cast.doctor, clinician=cast.doctor, day=MONDAY, kind=video)
    services.day_type_set(by=cast.doctor, clinician=cast.doctor, day=MONDAY, kind=None)

    slots = template_slots([cast.doctor.pk], MONDAY, 1, ROME)

    assert {s.appointment_type_id for s in slots} == {kind.pk}
    assert len(slots) == 9


def test_a_day_given_an_inactive_type_has_no_slots(cast, kind, video):
    make_plan(cast.doctor, cast.doctor, [kind], MONDAY, MONDAY)
    services.day_type_set(by=cast.doctor, clinician=cast.doctor, day=MONDAY, kind=video)
    services.appointment_type_save(by=cast.clinic_admin, kind=video, is_active=False)

    assert template_slots([cast.doctor.pk], MONDAY, 1, ROME) == []
