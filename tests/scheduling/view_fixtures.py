"""Helpers of the calendar view tests (tests/scheduling/test_views.py).

The views read the real clock, so the calendars built here are laid out around today: a work
plan from a week ago to a month ahead, with one block 08:00-20:00 on every day of the week.
Tomorrow is then free all day, whatever the hour the tests run at (online bookings need two
hours' notice; tomorrow 08:00 in Rome is always more than that ahead)."""

import re
from datetime import date, datetime, time, timedelta
from html import unescape
from zoneinfo import ZoneInfo

from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from consulta.accounts.models import StaffMember
from consulta.patients.models import Patient
from consulta.scheduling import services
from consulta.scheduling.models import AppointmentType, Booking, ContactMode, WeekTemplate

ROME = ZoneInfo("Europe/Rome")  # the cast's clinic
FETCH = {"X-Requested-With": "fetch"}
EVERY_DAY = range(7)


def url(name, *args):
    return reverse(name, args=args)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def text(response) -> str:
    """The page with its HTML entities decoded (messages with apostrophes are escaped)."""
    return unescape(response.content.decode())


def rome_today() -> date:
    return timezone.now().astimezone(ROME).date()


def tomorrow() -> date:
    return rome_today() + timedelta(days=1)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """This wall-clock time of `day` in Rome, aware."""
    return datetime.combine(day, time(hour, minute), tzinfo=ROME)


def epoch(moment: datetime) -> str:
    """A slot's start as the pages send it."""
    return str(int(moment.timestamp()))


def typed(moment: datetime) -> str:
    """A date and time as the datetime-local inputs send it, in the clinic's time zone."""
    return moment.astimezone(ROME).strftime("%Y-%m-%dT%H:%M")


def make_type(by: StaffMember, **fields) -> AppointmentType:
    """A type saved by the service: the 20-minute "Visita", in person (default) or video,
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
        "max_open_bookings": 0,
    }
    values.update(fields)
    return services.appointment_type_save(by=by, **values)


def make_week(by: StaffMember, clinician: StaffMember, types, name="Sempre") -> WeekTemplate:
    """A template open 08:00-20:00 every day for `types`, applied from a week ago to a month
    ahead."""
    template = services.week_template_create(by=by, clinician=clinician, name=name)
    for weekday in EVERY_DAY:
        services.template_block_add(
            by=by,
            template=template,
            weekday=weekday,
            start_time=time(8),
            end_time=time(20),
            types=types,
        )
    today = rome_today()
    services.work_plan_create(
        by=by,
        clinician=clinician,
        template=template,
        start_date=today - timedelta(days=7),
        end_date=today + timedelta(days=30),
    )
    return template


def book(
    by: StaffMember,
    patient: Patient,
    kind: AppointmentType,
    starts_at: datetime,
    clinician: StaffMember | None = None,
    **fields,
) -> Booking:
    """A booking made by staff through the service (in the calendar of `by` by default)."""
    return services.booking_create(
        by=by,
        clinician=clinician or by,
        patient=patient,
        kind=kind,
        starts_at=starts_at,
        **fields,
    )


def move_to_the_past(booking: Booking, days: int = 2) -> Booking:
    """The booking, as if it had been made for `days` days ago (the services refuse the
    past)."""
    shift = timedelta(days=days)
    Booking.objects.filter(pk=booking.pk).update(
        starts_at=booking.starts_at - shift, ends_at=booking.ends_at - shift
    )
    booking.holds.update(starts_at=booking.starts_at - shift, ends_at=booking.ends_at - shift)
    return Booking.objects.get(pk=booking.pk)


def slot_starts(response) -> list[str]:
    """The values of the free times a patient can choose, in the page's order."""
    return re.findall(r'name="start" value="(\d+)"', response.content.decode())


def day_columns(response) -> list[str]:
    """The aria-labels of the calendar grid's columns ("<doctor> · <day>")."""
    return [
        unescape(label)
        for label in re.findall(
            r'<section class="calendar-day[^"]*" aria-label="([^"]*)"', response.content.decode()
        )
    ]
