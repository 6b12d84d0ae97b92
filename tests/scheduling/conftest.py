"""Fixtures of the calendar tests. Everything is configured through the services, on dates in
2027 with a fixed `now`, so that no test depends on the day it runs:

- `kind`: the clinic's 20-minute visit, in person (default) or video, bookable online by the
  patients of the group practice;
- `video`: the clinic's 15-minute video consultation;
- `open_calendar`: the cast's doctor, open for online booking, offering both types Monday to
  Friday 09:00-12:00 from 1 March to 31 May 2027."""

from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from consulta.accounts.models import CareTeam, StaffMember
from consulta.lib.errors import DomainError
from consulta.scheduling import services
from consulta.scheduling.models import AppointmentType, ContactMode, WorkPlan

ROME = ZoneInfo("Europe/Rome")
MONDAY = date(2027, 3, 1)  # a Monday; 1 March 2027 is in winter time (UTC+1) in Rome
WEDNESDAY = date(2027, 3, 3)
# Monday 1 March 2027, 08:00 in Rome: one hour before the first slot of the open calendar.
NOW = datetime(2027, 3, 1, 7, 0, tzinfo=UTC)
WORKING_WEEK = range(5)
EVERY_DAY = range(7)


def local(day: date, hour: int, minute: int = 0, tz: ZoneInfo = ROME) -> datetime:
    """An aware datetime at this wall-clock time of `day` in `tz`."""
    return datetime.combine(day, time(hour, minute), tzinfo=tz)


def make_type(by: StaffMember, **fields) -> AppointmentType:
    """An appointment type saved by the service: a 20-minute visit, in person or video,
    bookable online by the group practice's patients, unless `fields` say otherwise."""
    values = {
        "name": "Visita",
        "duration_minutes": 20,
        "offers_in_person": True,
        "offers_video": True,
        "default_contact_mode": ContactMode.IN_PERSON,
        "bookable_online": True,
        "online_audience": AppointmentType.Audience.GROUP,
        "min_notice_hours": 2,
        "max_days_ahead": 60,
        "cancel_deadline_hours": 24,
        "max_open_bookings": 2,
    }
    values.update(fields)
    return services.appointment_type_save(by=by, **values)


def make_plan(
    by: StaffMember,
    clinician: StaffMember,
    types,
    start: date,
    end: date,
    *,
    weekdays=WORKING_WEEK,
    opens: time = time(9),
    closes: time = time(12),
    name: str = "Settimana tipo",
) -> WorkPlan:
    """A week template with one block `opens`-`closes` on each of `weekdays`, offering
    `types`, applied from `start` to `end` (both included)."""
    template = services.week_template_create(by=by, clinician=clinician, name=name)
    for weekday in weekdays:
        services.template_block_add(
            by=by,
            template=template,
            weekday=weekday,
            start_time=opens,
            end_time=closes,
            types=types,
        )
    return services.work_plan_create(
        by=by, clinician=clinician, template=template, start_date=start, end_date=end
    )


@contextmanager
def refused(code: str):
    """`with refused("plan_overlap"):` expects a DomainError with this code."""
    with pytest.raises(DomainError) as info:
        yield info
    assert info.value.code == code, f"{info.value.code}: {info.value.message}"


def local_times(slots, tz: ZoneInfo = ROME) -> list[str]:
    return [f"{s.starts_at.astimezone(tz):%Y-%m-%d %H:%M}" for s in slots]


@pytest.fixture
def kind(cast) -> AppointmentType:
    return make_type(cast.clinic_admin)


@pytest.fixture
def video(cast) -> AppointmentType:
    return make_type(
        cast.clinic_admin,
        name="Videoconsulto",
        duration_minutes=15,
        offers_in_person=False,
        offers_video=True,
        default_contact_mode=ContactMode.VIDEO,
    )


@pytest.fixture
def open_calendar(cast, kind, video) -> WorkPlan:
    services.calendar_set_online(by=cast.doctor, clinician=cast.doctor, online=True)
    return make_plan(cast.doctor, cast.doctor, [kind, video], MONDAY, date(2027, 5, 31))


@pytest.fixture
def secretary(cast) -> StaffMember:
    """The cast's secretary, serving the group practice (as in tests/patients)."""
    CareTeam.objects.get(clinic=cast.clinic, kind=CareTeam.Kind.GROUP).members.add(cast.secretary)
    return cast.secretary
