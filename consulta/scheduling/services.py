"""Writes on the calendar: configuration (appointment types, week templates, work plans,
absences) and bookings.

A booking takes time in its clinician's calendar and in each additional participant's
(`BookingHold`). Every write of holds first looks for an overlap, to say so clearly, and on
PostgreSQL the exclusion constraint decides any race: of concurrent attempts on one slot,
exactly one commits; the others get SlotTaken. On SQLite writers are serialised, so the
look-up alone is exact."""

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from consulta.accounts.models import CareTeam, StaffMember
from consulta.audit.services import audit_record
from consulta.lib.errors import DomainError
from consulta.lib.realtime import clinic_visits_group, publish_on_commit
from consulta.notifications.services import email_send_on_commit
from consulta.patients.access import patients_visible_to, team_doctor_ids, visible_doctor_ids
from consulta.patients.models import Patient, PatientBlock
from consulta.patients.services import require_not_blocked
from consulta.scheduling.ics import booking_ics
from consulta.scheduling.models import (
    Absence,
    AppointmentType,
    Booking,
    BookingHold,
    Calendar,
    ContactMode,
    DayType,
    TemplateBlock,
    WeekTemplate,
    WorkPlan,
)
from consulta.scheduling.slots import Slot, free_slots, template_slots
from consulta.visits.models import Visit

log = logging.getLogger(__name__)

# A booking "now" may start a little in the past (the form took a minute to fill).
_PAST_TOLERANCE = timedelta(minutes=5)
# Two attempts on one time: the exclusion constraint refuses the second; and when a
# transaction holding that time rolls back, the attempts waiting on it can deadlock with each
# other, and PostgreSQL aborts one of them. Either way that attempt lost the time.
_LOST_RACE = {"23P01", "40P01"}
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


class SlotTaken(DomainError):
    def __init__(self):
        super().__init__(
            _("This time has just been taken. Choose another one from the updated list."),
            code="taken",
        )


def clinic_tz(clinic) -> ZoneInfo:
    return ZoneInfo(clinic.time_zone)


# --- Configuration ---------------------------------------------------------------------------


def _require_configures(by: StaffMember, clinician: StaffMember) -> None:
    allowed = by.clinic_id == clinician.clinic_id and (
        by.role == StaffMember.Role.CLINIC_ADMIN or by.pk == clinician.pk
    )
    if not allowed or not clinician.is_doctor:
        raise DomainError(_("You cannot change this calendar."), code="forbidden")


def calendar_of(clinician: StaffMember) -> Calendar:
    calendar, _created = Calendar.objects.get_or_create(clinician=clinician)
    return calendar


def calendar_set_online(*, by: StaffMember, clinician: StaffMember, online: bool) -> Calendar:
    _require_configures(by, clinician)
    calendar = calendar_of(clinician)
    calendar.is_online = online
    calendar.save(update_fields=["is_online"])
    return calendar


def calendar_feed_create(*, by: StaffMember, clinician: StaffMember) -> str:
    """A new private feed address for the clinician's phone calendar (the old one stops
    working). Only the token's hash is kept: the address is shown once."""
    if by.pk != clinician.pk:
        raise DomainError(_("Only the clinician can create their calendar feed."), code="forbidden")
    token = secrets.token_urlsafe(32)
    calendar = calendar_of(clinician)
    calendar.feed_token_hash = hashlib.sha256(token.encode()).hexdigest()
    calendar.save(update_fields=["feed_token_hash"])
    return token


def calendar_feed_revoke(*, by: StaffMember, clinician: StaffMember) -> None:
    _require_configures(by, clinician)
    calendar = calendar_of(clinician)
    calendar.feed_token_hash = ""
    calendar.save(update_fields=["feed_token_hash"])


def calendar_for_feed(token: str) -> Calendar | None:
    if not token:
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    return (
        Calendar.objects.filter(feed_token_hash=digest)
        .select_related("clinician__user", "clinician__clinic")
        .first()
    )


def appointment_type_save(
    *, by: StaffMember, kind: AppointmentType | None = None, **fields
) -> AppointmentType:
    """Create (`kind` None) or update an appointment type. A type without a clinician is the
    whole clinic's: only its administrators make those."""
    owners = [fields.get("clinician", kind.clinician if kind else None)]
    if kind is not None:
        owners.append(kind.clinician)  # nobody takes over a type they could not change
    for clinician in owners:
        if clinician is None:
            if by.role != StaffMember.Role.CLINIC_ADMIN:
                raise DomainError(
                    _("Only a clinic administrator can create types for the whole clinic."),
                    code="forbidden",
                )
        else:
            _require_configures(by, clinician)
    kind = kind or AppointmentType(clinic_id=by.clinic_id)
    if kind.clinic_id != by.clinic_id:
        raise DomainError(_("You cannot change this appointment type."), code="forbidden")
    for name, value in fields.items():
        setattr(kind, name, value)
    if not kind.contact_modes:
        raise DomainError(_("Offer at least one contact mode."), code="no_contact_mode")
    if kind.default_contact_mode not in kind.contact_modes:
        raise DomainError(
            _("The default contact mode must be one of the modes offered."), code="default_mode"
        )
    if not COLOUR.fullmatch(kind.colour or ""):
        raise DomainError(_("Choose a colour such as #2f6fde."), code="colour")
    if not 5 <= kind.duration_minutes <= 480:
        raise DomainError(_("The duration must be between 5 minutes and 8 hours."), code="duration")
    kind.save()
    return kind


def week_template_create(*, by: StaffMember, clinician: StaffMember, name: str) -> WeekTemplate:
    _require_configures(by, clinician)
    if not name.strip():
        raise DomainError(_("Give the week template a name."), code="required")
    return WeekTemplate.objects.create(clinician=clinician, name=name.strip())


def template_block_add(
    *, by: StaffMember, template: WeekTemplate, weekday: int, start_time, end_time, types
) -> TemplateBlock:
    _require_configures(by, template.clinician)
    if end_time <= start_time:
        raise DomainError(_("A time block must end after it starts."), code="block_order")
    types = list(types)
    if not types:
        raise DomainError(_("Choose at least one appointment type."), code="required")
    length = datetime.combine(datetime.min, end_time) - datetime.combine(datetime.min, start_time)
    for kind in types:
        if kind.clinic_id != template.clinician.clinic_id or kind.clinician_id not in (
            None,
            template.clinician_id,
        ):
            raise DomainError(_("This appointment type is not offered here."), code="forbidden")
        if timedelta(minutes=kind.duration_minutes) > length:
            raise DomainError(
                _("%(type)s lasts %(minutes)d minutes: it does not fit in this block.")
                % {"type": kind.name, "minutes": kind.duration_minutes},
                code="does_not_fit",
            )
    with transaction.atomic():
        WeekTemplate.objects.select_for_update().get(pk=template.pk)
        clash = template.blocks.filter(
            weekday=weekday, start_time__lt=end_time, end_time__gt=start_time
        ).first()
        if clash is not None:
            raise DomainError(
                _("This block overlaps %(block)s of the same day.") % {"block": clash},
                code="block_overlap",
            )
        block = TemplateBlock.objects.create(
            template=template, weekday=weekday, start_time=start_time, end_time=end_time
        )
        block.appointment_types.set(types)
    return block


def template_block_delete(*, by: StaffMember, block: TemplateBlock) -> None:
    _require_configures(by, block.template.clinician)
    block.delete()


def work_plan_create(
    *, by: StaffMember, clinician: StaffMember, template: WeekTemplate, start_date, end_date
) -> WorkPlan:
    _require_configures(by, clinician)
    if template.clinician_id != clinician.pk:
        raise DomainError(_("Choose one of this clinician's week templates."), code="forbidden")
    if end_date < start_date:
        raise DomainError(_("A work plan must end on or after its first day."), code="plan_order")
    with transaction.atomic():
        StaffMember.objects.select_for_update().get(pk=clinician.pk)
        clash = WorkPlan.objects.filter(
            clinician=clinician, start_date__lte=end_date, end_date__gte=start_date
        ).first()
        if clash is not None:
            raise DomainError(
                _("This work plan overlaps another one (%(plan)s).") % {"plan": clash},
                code="plan_overlap",
            )
        return WorkPlan.objects.create(
            clinician=clinician, template=template, start_date=start_date, end_date=end_date
        )


def work_plan_delete(*, by: StaffMember, plan: WorkPlan) -> None:
    _require_configures(by, plan.clinician)
    plan.delete()


def absence_create(
    *, by: StaffMember, clinician: StaffMember, start_date, end_date, reason: str = ""
) -> Absence:
    _require_configures(by, clinician)
    if end_date < start_date:
        raise DomainError(_("An absence must end on or after its first day."), code="plan_order")
    return Absence.objects.create(
        clinician=clinician, start_date=start_date, end_date=end_date, reason=reason.strip()
    )


def absence_delete(*, by: StaffMember, absence: Absence) -> None:
    _require_configures(by, absence.clinician)
    absence.delete()


def day_type_set(
    *, by: StaffMember, clinician: StaffMember, day, kind: AppointmentType | None
) -> None:
    """Make every slot of one day of a calendar of one type (None: back to the template).
    Bookings already made keep their type."""
    if not by.works_in_registry or clinician.pk not in visible_doctor_ids(by):
        raise DomainError(_("You cannot change this calendar."), code="forbidden")
    if kind is None:
        DayType.objects.filter(clinician=clinician, day=day).delete()
        return
    if kind.clinic_id != clinician.clinic_id or kind.clinician_id not in (None, clinician.pk):
        raise DomainError(_("This appointment type is not offered here."), code="forbidden")
    DayType.objects.update_or_create(
        clinician=clinician, day=day, defaults={"appointment_type": kind}
    )
    publish_on_commit(clinic_visits_group(clinician.clinic_id), {"type": "visits.changed"})


# --- Online booking: who may book what, and why not ----------------------------------------


@dataclass(frozen=True)
class Obstacle:
    code: str
    message: str


def _audience_allows(kind: AppointmentType, patient: Patient, clinician: StaffMember) -> bool:
    if patient.clinic_id != clinician.clinic_id or patient.is_archived:
        return False
    if kind.online_audience == AppointmentType.Audience.CLINIC:
        return True
    if kind.online_audience == AppointmentType.Audience.GROUP:
        group = team_doctor_ids(patient.doctor, [CareTeam.Kind.GROUP]) | {patient.doctor_id}
        return clinician.pk in group
    return patient.doctor_id == clinician.pk


def _window(kind: AppointmentType, now: datetime) -> tuple[datetime, datetime]:
    return now + timedelta(hours=kind.min_notice_hours), now + timedelta(days=kind.max_days_ahead)


def _open_bookings(patient: Patient, kind: AppointmentType, now: datetime) -> int:
    return Booking.objects.filter(
        patient=patient,
        appointment_type=kind,
        status=Booking.Status.BOOKED,
        starts_at__gte=now,
    ).count()


def online_slots(
    *, clinician: StaffMember, kind: AppointmentType, now=None, days=None
) -> list[Slot]:
    """The free times patients may book online, within the type's notice and horizon."""
    now = now or timezone.now()
    earliest, latest = _window(kind, now)
    tz = clinic_tz(clinician.clinic)
    first_day = earliest.astimezone(tz).date()
    span = (latest.astimezone(tz).date() - first_day).days + 1
    return free_slots(
        [clinician.pk],
        first_day,
        min(span, days) if days else span,
        tz,
        type_ids=[kind.pk],
        not_before=earliest,
        not_after=latest,
    )


def online_obstacles(
    *, patient: Patient | None, clinician: StaffMember, kind: AppointmentType, now=None
) -> list[Obstacle]:
    """Every reason the patient cannot book this type with this clinician online now; empty
    when they can. The calendar settings page shows these to staff. Without a patient, only
    the calendar's own reasons (online, type, template, work plan, free times)."""
    now = now or timezone.now()
    found = []
    names = {"type": kind.name, "clinician": str(clinician)}
    if (
        patient is not None
        and patient.blocks.filter(area=PatientBlock.Area.AGENDA, lifted_at__isnull=True).exists()
    ):
        found.append(
            Obstacle("blocked", _("An operator has blocked this patient's online booking."))
        )
    if not Calendar.objects.filter(clinician=clinician, is_online=True).exists():
        found.append(
            Obstacle(
                "calendar_offline",
                _("The calendar of %(clinician)s is not open for online booking.") % names,
            )
        )
    if not (kind.bookable_online and kind.is_active):
        found.append(Obstacle("type_offline", _("%(type)s cannot be booked online.") % names))
    if kind.clinician_id not in (None, clinician.pk):
        found.append(Obstacle("not_offered", _("%(clinician)s does not offer %(type)s.") % names))
    in_template = TemplateBlock.objects.filter(
        template__clinician=clinician, appointment_types=kind
    )
    earliest, latest = _window(kind, now)
    tz = clinic_tz(clinician.clinic)
    first_day, last_day = earliest.astimezone(tz).date(), latest.astimezone(tz).date()
    given_days = DayType.objects.filter(
        clinician=clinician, appointment_type=kind, day__gte=first_day, day__lte=last_day
    ).exists()
    # A day given this type (DayType) offers it whatever the templates say.
    if not given_days:
        if not in_template.exists():
            found.append(
                Obstacle(
                    "not_in_template",
                    _("%(type)s is in none of the week templates of %(clinician)s.") % names,
                )
            )
        elif not WorkPlan.objects.filter(
            clinician=clinician,
            template__blocks__in=in_template,
            start_date__lte=last_day,
            end_date__gte=first_day,
        ).exists():
            found.append(
                Obstacle(
                    "not_planned",
                    _(
                        "No work plan of %(clinician)s applies a week template with %(type)s "
                        "between %(first)s and %(last)s."
                    )
                    % {**names, **_span(first_day, last_day)},
                )
            )
    if patient is not None and not _audience_allows(kind, patient, clinician):
        found.append(
            Obstacle(
                "not_allowed",
                _("%(type)s can be booked online only by: %(audience)s.")
                % {**names, "audience": kind.get_online_audience_display().lower()},
            )
        )
    if (
        patient is not None
        and kind.max_open_bookings
        and _open_bookings(patient, kind, now) >= kind.max_open_bookings
    ):
        found.append(
            Obstacle(
                "limit",
                _("The patient already has %(count)d open bookings of %(type)s, the limit.")
                % {**names, "count": kind.max_open_bookings},
            )
        )
    if not found and not online_slots(clinician=clinician, kind=kind, now=now):
        found.append(
            Obstacle(
                "no_free_time",
                _(
                    "Every time for %(type)s is taken between %(first)s and %(last)s "
                    "(bookings need %(hours)d hours' notice)."
                )
                % {**names, **_span(first_day, last_day), "hours": kind.min_notice_hours},
            )
        )
    return found


def _span(first, last) -> dict:
    return {
        "first": date_format(first, "SHORT_DATE_FORMAT"),
        "last": date_format(last, "SHORT_DATE_FORMAT"),
    }


def online_choices(patient: Patient) -> list[tuple[StaffMember, AppointmentType]]:
    """(clinician, type) pairs the patient may book online, free times or not."""
    doctors = StaffMember.objects.filter(
        clinic_id=patient.clinic_id,
        role=StaffMember.Role.DOCTOR,
        calendar__is_online=True,
    ).select_related("user", "clinic")
    kinds = AppointmentType.objects.filter(
        clinic_id=patient.clinic_id, bookable_online=True, is_active=True
    )
    offered = set(
        TemplateBlock.objects.filter(
            template__clinician__in=doctors, appointment_types__in=kinds
        ).values_list("template__clinician_id", "appointment_types")
    ) | set(
        DayType.objects.filter(
            clinician__in=doctors, appointment_type__in=kinds, day__gte=timezone.localdate()
        ).values_list("clinician_id", "appointment_type_id")
    )
    choices = []
    for doctor in doctors:
        for kind in kinds:
            if (
                (doctor.pk, kind.pk) in offered
                and kind.clinician_id in (None, doctor.pk)
                and _audience_allows(kind, patient, doctor)
            ):
                choices.append((doctor, kind))
    return choices


# --- Bookings ----------------------------------------------------------------------------------


def _contact_mode(kind: AppointmentType, mode: str | None) -> str:
    if not mode:
        return kind.default_contact_mode
    if mode not in kind.contact_modes:
        raise DomainError(
            _("%(type)s is not offered as %(mode)s.")
            % {"type": kind.name, "mode": ContactMode(mode).label.lower()},
            code="contact_mode",
        )
    return mode


def _check_time(starts_at: datetime, now: datetime) -> None:
    if timezone.is_naive(starts_at):
        raise DomainError(_("The time needs a time zone."), code="naive_time")
    if starts_at < now - _PAST_TOLERANCE:
        raise DomainError(_("This time is in the past. Choose a later time."), code="past")


def _in_working_hours(clinician: StaffMember, kind: AppointmentType, starts_at: datetime) -> bool:
    tz = clinic_tz(clinician.clinic)
    day = starts_at.astimezone(tz).date()
    return any(
        slot.starts_at == starts_at
        for slot in template_slots([clinician.pk], day, 1, tz, type_ids=[kind.pk])
    )


def _require_working_hours(clinician: StaffMember, kind: AppointmentType, starts_at) -> None:
    """Staff book outside the template's times only when they say so."""
    if not _in_working_hours(clinician, kind, starts_at):
        raise DomainError(
            _(
                "%(time)s is not a time for %(type)s in this calendar. Choose a free slot, or "
                "book outside the working hours on purpose."
            )
            % {"time": _local(starts_at, clinician), "type": kind.name},
            code="outside_hours",
        )


def _take(booking: Booking, clinician_ids: list[int]) -> None:
    """Hold the booking's time in these calendars, or raise SlotTaken."""
    clash = (
        BookingHold.objects.filter(
            clinician_id__in=clinician_ids,
            active=True,
            starts_at__lt=booking.ends_at,
            ends_at__gt=booking.starts_at,
        )
        .exclude(booking=booking)
        .exists()
    )
    if clash:
        raise SlotTaken
    try:
        with transaction.atomic():
            BookingHold.objects.filter(booking=booking).delete()
            BookingHold.objects.bulk_create(
                BookingHold(
                    booking=booking,
                    clinician_id=cid,
                    starts_at=booking.starts_at,
                    ends_at=booking.ends_at,
                )
                for cid in clinician_ids
            )
    except (IntegrityError, OperationalError) as error:
        if getattr(error.__cause__, "sqlstate", None) in _LOST_RACE:
            raise SlotTaken from None
        raise


def _language(patient: Patient) -> str:
    return (patient.user.language if patient.user else "") or patient.clinic.default_language


def _notify(booking: Booking, event: str) -> None:
    """Email the patient, with the appointment as a calendar file, after commit."""
    kind, patient = booking.appointment_type, booking.patient
    wanted = {
        "created": kind.notify_on_booking,
        "changed": kind.notify_on_change,
        "cancelled": kind.notify_on_cancellation,
    }[event]
    if not (wanted and patient.email):
        return
    language = _language(patient)
    context = {
        "booking": booking,
        "patient": patient,
        "event": event,
        "time_zone": patient.clinic.time_zone,
        "url": settings.PUBLIC_URL + reverse("my_bookings"),
        "visit_url": (
            settings.PUBLIC_URL + reverse("visit_room", args=[booking.visit_id])
            if booking.visit_id and event != "cancelled"
            else ""
        ),
    }
    email_send_on_commit(
        to=patient.email,
        template=f"scheduling/email/booking_{event}",
        context=context,
        language=language,
        ics=booking_ics(booking, language=language),
    )


def _publish(booking: Booking) -> None:
    # The calendar pages and the dashboard listen on the clinic's doorbell and refetch.
    publish_on_commit(clinic_visits_group(booking.clinic_id), {"type": "visits.changed"})


def _sync_visit(booking: Booking, user) -> None:
    """A video booking has its visit room; a booking that stops being video ends it."""
    if booking.contact_mode == ContactMode.VIDEO and booking.status == Booking.Status.BOOKED:
        if booking.visit is None or not booking.visit.is_open:
            booking.visit = Visit.objects.create(
                clinic_id=booking.clinic_id,
                patient=booking.patient,
                doctor=booking.clinician,
                scheduled_at=booking.starts_at,
                created_by=user,
            )
        elif booking.visit.scheduled_at != booking.starts_at:
            booking.visit.scheduled_at = booking.starts_at
            booking.visit.save(update_fields=["scheduled_at"])
    elif booking.visit is not None and booking.visit.is_open:
        booking.visit.status = Visit.Status.ENDED
        booking.visit.ended_at = timezone.now()
        booking.visit.ended_by = user
        booking.visit.save(update_fields=["status", "ended_at", "ended_by"])


def booking_create(
    *,
    by: StaffMember,
    clinician: StaffMember,
    patient: Patient,
    kind: AppointmentType,
    starts_at: datetime,
    contact_mode: str | None = None,
    notes_for_patient: str = "",
    internal_notes: str = "",
    participants=(),
    outside_hours: bool = False,
    duration_minutes: int | None = None,
    now: datetime | None = None,
) -> Booking:
    """Staff book for a patient: any time in the working hours, or outside them when they
    say so (`outside_hours`), for the type's duration or another one. Video bookings get
    their visit room."""
    now = now or timezone.now()
    doctors = visible_doctor_ids(by)
    if not by.works_in_registry or clinician.pk not in doctors or not clinician.is_doctor:
        raise DomainError(_("You cannot book in this calendar."), code="forbidden")
    if patient.is_archived or not patients_visible_to(by).filter(pk=patient.pk).exists():
        raise DomainError(_("Choose one of your patients."), code="forbidden")
    if kind.clinic_id != clinician.clinic_id or kind.clinician_id not in (None, clinician.pk):
        raise DomainError(_("This appointment type is not offered here."), code="forbidden")
    mode = _contact_mode(kind, contact_mode)
    _check_time(starts_at, now)
    minutes = duration_minutes or kind.duration_minutes
    if not 5 <= minutes <= 480:
        raise DomainError(_("The duration must be between 5 minutes and 8 hours."), code="duration")
    participants = list(participants)
    for other in participants:
        if other.pk == clinician.pk or other.pk not in doctors or not other.is_doctor:
            raise DomainError(
                _("Additional participants must be other doctors you work with."),
                code="participants",
            )
    _require_video_seats(mode, len(participants))
    if not outside_hours:
        _require_working_hours(clinician, kind, starts_at)
    with transaction.atomic():
        booking = Booking.objects.create(
            clinic_id=clinician.clinic_id,
            clinician=clinician,
            patient=patient,
            appointment_type=kind,
            contact_mode=mode,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=minutes),
            source=Booking.Source.STAFF,
            notes_for_patient=notes_for_patient.strip(),
            internal_notes=internal_notes.strip(),
            booked_by=by.user,
        )
        _take(booking, [clinician.pk, *(p.pk for p in participants)])
        _sync_visit(booking, by.user)
        booking.save(update_fields=["visit"])
        audit_record(actor=by.user, action="booking.create", patient=patient, target=booking)
        _notify(booking, "created")
        _publish(booking)
    log.info("booking %s created by %s", booking.pk, by.user_id)
    return booking


def booking_book_online(
    *,
    patient: Patient,
    clinician: StaffMember,
    kind: AppointmentType,
    starts_at: datetime,
    contact_mode: str | None = None,
    notes_for_patient: str = "",
    now: datetime | None = None,
) -> Booking:
    """The patient books a free time themselves, within every rule of the type."""
    now = now or timezone.now()
    require_not_blocked(patient, PatientBlock.Area.AGENDA)
    mode = _contact_mode(kind, contact_mode)
    _check_time(starts_at, now)
    with transaction.atomic():
        # Serialise this patient's bookings: the open-bookings limit is a read, then a write.
        patient = (
            Patient.objects.select_for_update(of=("self",))
            .select_related("clinic", "doctor")
            .get(pk=patient.pk)
        )
        obstacles = [
            o
            for o in online_obstacles(patient=patient, clinician=clinician, kind=kind, now=now)
            if o.code != "no_free_time"
        ]
        if obstacles:
            raise DomainError(obstacles[0].message, code=obstacles[0].code)
        slots = online_slots(clinician=clinician, kind=kind, now=now)
        if not any(s.starts_at == starts_at for s in slots):
            earliest, latest = _window(kind, now)
            if not earliest <= starts_at <= latest:
                raise DomainError(
                    _("%(type)s can be booked from %(hours)d hours to %(days)d days ahead.")
                    % {
                        "type": kind.name,
                        "hours": kind.min_notice_hours,
                        "days": kind.max_days_ahead,
                    },
                    code="window",
                )
            if _in_working_hours(clinician, kind, starts_at):
                raise SlotTaken
            raise DomainError(
                _("This is not a time you can book. Choose one of the free times."),
                code="outside_hours",
            )
        booking = Booking.objects.create(
            clinic_id=clinician.clinic_id,
            clinician=clinician,
            patient=patient,
            appointment_type=kind,
            contact_mode=mode,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=kind.duration_minutes),
            source=Booking.Source.ONLINE,
            notes_for_patient=notes_for_patient.strip(),
            booked_by=patient.user,
        )
        _take(booking, [clinician.pk])
        _sync_visit(booking, patient.user)
        booking.save(update_fields=["visit"])
        audit_record(actor=patient.user, action="booking.create", patient=patient, target=booking)
        _notify(booking, "created")
        _publish(booking)
    return booking


def _local(moment: datetime, clinician: StaffMember) -> str:
    return date_format(moment.astimezone(clinic_tz(clinician.clinic)), "SHORT_DATETIME_FORMAT")


def _locked(booking: Booking) -> Booking:
    return (
        Booking.objects.select_for_update(of=("self",))
        .select_related(
            "patient__clinic", "patient__user", "clinician__clinic", "appointment_type", "visit"
        )
        .get(pk=booking.pk)
    )


def cancel_deadline(booking: Booking) -> datetime:
    """Until when the patient may cancel online."""
    return booking.starts_at - timedelta(hours=booking.appointment_type.cancel_deadline_hours)


def booking_cancel(
    *, booking: Booking, reason: str = "", by: StaffMember | None = None, patient=None, now=None
) -> Booking:
    """Staff cancel any booking of a calendar they work with; a patient cancels their own,
    up to the type's deadline."""
    now = now or timezone.now()
    with transaction.atomic():
        booking = _locked(booking)
        if by is not None:
            _require_works_with(by, booking)
            actor = by.user
        else:
            if patient is None or booking.patient_id != patient.pk:
                raise DomainError(_("You cannot change this booking."), code="forbidden")
            if now > cancel_deadline(booking):
                raise DomainError(
                    _(
                        "This booking can no longer be cancelled online (up to %(hours)d hours "
                        "before). Please call the clinic."
                    )
                    % {"hours": booking.appointment_type.cancel_deadline_hours},
                    code="deadline",
                )
            actor = patient.user
        if booking.status != Booking.Status.BOOKED:
            raise DomainError(_("Only a booked appointment can be cancelled."), code="state")
        _require_not_held(booking)
        booking.status = Booking.Status.CANCELLED
        booking.cancelled_at = now
        booking.cancelled_by = actor
        booking.cancel_reason = reason.strip()[:300]
        booking.save(
            update_fields=["status", "cancelled_at", "cancelled_by", "cancel_reason", "updated_at"]
        )
        booking.holds.update(active=False)
        _sync_visit(booking, actor)
        audit_record(
            actor=actor,
            action="booking.cancel",
            patient=booking.patient,
            target=booking,
            reason=booking.cancel_reason,
        )
        _notify(booking, "cancelled")
        _publish(booking)
    return booking


def _require_video_seats(mode: str, extra_doctors: int) -> None:
    """A video call is a mesh of at most VISIT_MAX_PARTICIPANTS people."""
    seats = settings.VISIT_MAX_PARTICIPANTS - 2  # the clinician and the patient have theirs
    if mode == ContactMode.VIDEO and extra_doctors > seats:
        raise DomainError(
            _("A video visit holds at most %(count)d people: add at most %(extra)d other doctors.")
            % {"count": settings.VISIT_MAX_PARTICIPANTS, "extra": seats},
            code="participants",
        )


def _require_works_with(by: StaffMember, booking: Booking) -> None:
    if not by.works_in_registry or booking.clinician_id not in visible_doctor_ids(by):
        raise DomainError(_("You cannot change this booking."), code="forbidden")


def _require_books(by: StaffMember, booking: Booking) -> None:
    _require_works_with(by, booking)
    if booking.status != Booking.Status.BOOKED:
        raise DomainError(_("Only a booked appointment can be changed."), code="state")


def _require_not_held(booking: Booking) -> None:
    if booking.visit_held:
        raise DomainError(
            _(
                "This appointment has taken place: its video visit was held. It can no longer "
                "be moved or cancelled; mark it done or missed."
            ),
            code="held",
        )


def booking_change(
    *,
    by: StaffMember,
    booking: Booking,
    starts_at: datetime | None = None,
    kind: AppointmentType | None = None,
    contact_mode: str | None = None,
    outside_hours: bool = False,
    now=None,
) -> Booking:
    """Move a booking, or change its type or contact mode; the time it holds follows."""
    now = now or timezone.now()
    with transaction.atomic():
        booking = _locked(booking)
        _require_books(by, booking)
        _require_not_held(booking)
        kind = kind or booking.appointment_type
        if kind.clinic_id != booking.clinic_id or kind.clinician_id not in (
            None,
            booking.clinician_id,
        ):
            raise DomainError(_("This appointment type is not offered here."), code="forbidden")
        mode = _contact_mode(
            kind,
            contact_mode
            or (booking.contact_mode if booking.contact_mode in kind.contact_modes else None),
        )
        holders = list(booking.holds.values_list("clinician_id", flat=True)) or [
            booking.clinician_id
        ]
        _require_video_seats(mode, len(set(holders) - {booking.clinician_id}))
        starts = starts_at or booking.starts_at
        if starts_at is not None:
            _check_time(starts_at, now)
            if not outside_hours:
                _require_working_hours(booking.clinician, kind, starts_at)
        # A new type brings its duration; otherwise the booking keeps its own length.
        length = (
            timedelta(minutes=kind.duration_minutes)
            if kind.pk != booking.appointment_type_id
            else booking.ends_at - booking.starts_at
        )
        booking.appointment_type = kind
        booking.contact_mode = mode
        booking.starts_at = starts
        booking.ends_at = starts + length
        booking.save(
            update_fields=["appointment_type", "contact_mode", "starts_at", "ends_at", "updated_at"]
        )
        _take(booking, holders)
        _sync_visit(booking, by.user)
        booking.save(update_fields=["visit"])
        audit_record(
            actor=by.user, action="booking.change", patient=booking.patient, target=booking
        )
        _notify(booking, "changed")
        _publish(booking)
    return booking


def booking_set_status(*, by: StaffMember, booking: Booking, status: str) -> Booking:
    """Done or no-show, once the appointment has started."""
    if status not in (Booking.Status.DONE, Booking.Status.NO_SHOW):
        raise DomainError(_("Choose done or no-show."), code="state")
    with transaction.atomic():
        booking = _locked(booking)
        _require_books(by, booking)
        if booking.starts_at > timezone.now():
            raise DomainError(
                _("An appointment can be marked done or missed once it has started."),
                code="future",
            )
        booking.status = status
        booking.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=by.user,
            action="booking.status",
            patient=booking.patient,
            target=booking,
            status=status,
        )
        _publish(booking)
    return booking
