"""The calendar: appointment types, week templates in local wall-clock time, work plans that
apply them to dates, absences, and bookings stored in UTC.

A booking holds time in one or more clinicians' calendars (`BookingHold`: the clinician it
is for, plus the additional participants of a video visit). On PostgreSQL an exclusion
constraint on the active holds makes a double booking impossible, whatever the race
(migration 0002)."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from consulta.accounts.models import Clinic, StaffMember
from consulta.patients.models import Patient


class ContactMode(models.TextChoices):
    IN_PERSON = "in_person", _("In person")
    VIDEO = "video", _("Video")
    PHONE = "phone", _("Phone")


class Calendar(models.Model):
    """A clinician's calendar settings: online or not, and the private iCal feed."""

    clinician = models.OneToOneField(StaffMember, on_delete=models.CASCADE, related_name="calendar")
    is_online = models.BooleanField(
        _("open for online booking"),
        default=False,
        help_text=_("Patients can book the online appointment types of this calendar."),
    )
    # SHA-256 of the feed token; empty when no feed has been created or it was revoked.
    feed_token_hash = models.CharField(max_length=64, blank=True, db_index=True)

    class Meta:
        verbose_name = _("calendar")
        verbose_name_plural = _("calendars")

    def __str__(self):
        return str(self.clinician)


class AppointmentType(models.Model):
    class Audience(models.TextChoices):
        OWN = "own", _("The clinician's own patients")
        GROUP = "group", _("Patients of the group practice")
        CLINIC = "clinic", _("Any patient of the clinic")

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="appointment_types")
    # Empty: offered by every clinician of the clinic whose week template lists it.
    clinician = models.ForeignKey(
        StaffMember,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="appointment_types",
        verbose_name=_("clinician"),
        help_text=_("Leave empty for a type every clinician of the clinic may use."),
    )
    name = models.CharField(_("name"), max_length=100)
    duration_minutes = models.PositiveSmallIntegerField(_("duration (minutes)"), default=15)
    colour = models.CharField(_("colour"), max_length=7, default="#2f6fde")
    offers_in_person = models.BooleanField(_("in person"), default=True)
    offers_video = models.BooleanField(_("video"), default=False)
    offers_phone = models.BooleanField(_("phone"), default=False)
    default_contact_mode = models.CharField(
        _("default contact mode"),
        max_length=16,
        choices=ContactMode.choices,
        default=ContactMode.IN_PERSON,
    )
    bookable_online = models.BooleanField(_("bookable online"), default=False)
    online_audience = models.CharField(
        _("who may book online"), max_length=8, choices=Audience.choices, default=Audience.OWN
    )
    min_notice_hours = models.PositiveSmallIntegerField(_("minimum notice (hours)"), default=2)
    max_days_ahead = models.PositiveSmallIntegerField(_("bookable up to (days ahead)"), default=60)
    cancel_deadline_hours = models.PositiveSmallIntegerField(
        _("patients may cancel up to (hours before)"), default=24
    )
    max_open_bookings = models.PositiveSmallIntegerField(
        _("open bookings per patient"),
        default=2,
        help_text=_("How many future bookings of this type one patient may hold. 0: no limit."),
    )
    patient_information = models.TextField(
        _("information for the patient"),
        blank=True,
        help_text=_("Shown to the patient when they book, and in the confirmation."),
    )
    notify_on_booking = models.BooleanField(_("email the patient on booking"), default=True)
    notify_on_change = models.BooleanField(_("email the patient on change"), default=True)
    notify_on_cancellation = models.BooleanField(
        _("email the patient on cancellation"), default=True
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("appointment type")
        verbose_name_plural = _("appointment types")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                name="appointment_type_duration_positive",
                condition=Q(duration_minutes__gte=5) & Q(duration_minutes__lte=480),
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def contact_modes(self) -> list[str]:
        offered = [
            (self.offers_in_person, ContactMode.IN_PERSON),
            (self.offers_video, ContactMode.VIDEO),
            (self.offers_phone, ContactMode.PHONE),
        ]
        return [mode for on, mode in offered if on]


class WeekTemplate(models.Model):
    """Which appointment types a clinician offers at which weekday times (local time)."""

    clinician = models.ForeignKey(
        StaffMember, on_delete=models.CASCADE, related_name="week_templates"
    )
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        verbose_name = _("week template")
        verbose_name_plural = _("week templates")
        ordering = ["name"]

    def __str__(self):
        return self.name


class TemplateBlock(models.Model):
    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    template = models.ForeignKey(WeekTemplate, on_delete=models.CASCADE, related_name="blocks")
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    start_time = models.TimeField(_("from"))
    end_time = models.TimeField(_("to"))
    appointment_types = models.ManyToManyField(
        AppointmentType, related_name="blocks", verbose_name=_("appointment types")
    )

    class Meta:
        verbose_name = _("time block")
        verbose_name_plural = _("time blocks")
        ordering = ["weekday", "start_time"]
        constraints = [
            models.CheckConstraint(
                name="template_block_ends_after_start", condition=Q(end_time__gt=F("start_time"))
            ),
        ]

    def __str__(self):
        return f"{self.get_weekday_display()} {self.start_time:%H:%M}–{self.end_time:%H:%M}"


class WorkPlan(models.Model):
    """A week template applied to a date range (both days included) of a calendar."""

    clinician = models.ForeignKey(StaffMember, on_delete=models.CASCADE, related_name="work_plans")
    template = models.ForeignKey(
        WeekTemplate,
        on_delete=models.PROTECT,
        related_name="work_plans",
        verbose_name=_("week template"),
    )
    start_date = models.DateField(_("from"))
    end_date = models.DateField(_("to"))

    class Meta:
        verbose_name = _("work plan")
        verbose_name_plural = _("work plans")
        ordering = ["start_date"]
        constraints = [
            models.CheckConstraint(
                name="work_plan_ends_after_start", condition=Q(end_date__gte=F("start_date"))
            ),
        ]

    def __str__(self):
        return f"{self.template} {self.start_date}–{self.end_date}"


class Absence(models.Model):
    """Holidays and absences: no slots on these days (both included)."""

    clinician = models.ForeignKey(StaffMember, on_delete=models.CASCADE, related_name="absences")
    start_date = models.DateField(_("from"))
    end_date = models.DateField(_("to"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("absence")
        verbose_name_plural = _("absences")
        ordering = ["start_date"]
        constraints = [
            models.CheckConstraint(
                name="absence_ends_after_start", condition=Q(end_date__gte=F("start_date"))
            ),
        ]

    def __str__(self):
        return f"{self.reason or _('Absence')} {self.start_date}–{self.end_date}"


class DayType(models.Model):
    """For one day of a calendar, every slot is of this appointment type, whatever the week
    template says (a morning of vaccinations, a day of video visits)."""

    clinician = models.ForeignKey(StaffMember, on_delete=models.CASCADE, related_name="day_types")
    day = models.DateField(_("day"))
    appointment_type = models.ForeignKey(
        AppointmentType,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("appointment type"),
    )

    class Meta:
        verbose_name = _("appointment type of a day")
        verbose_name_plural = _("appointment types of days")
        constraints = [
            models.UniqueConstraint(fields=["clinician", "day"], name="one_day_type_per_day"),
        ]

    def __str__(self):
        return f"{self.day}: {self.appointment_type}"


class Booking(models.Model):
    class Status(models.TextChoices):
        BOOKED = "booked", _("Booked")
        DONE = "done", _("Done")
        NO_SHOW = "no_show", _("No-show")
        CANCELLED = "cancelled", pgettext_lazy("booking", "Cancelled")

    class Source(models.TextChoices):
        STAFF = "staff", _("By the clinic")
        ONLINE = "online", _("Online, by the patient")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="bookings")
    clinician = models.ForeignKey(
        StaffMember, on_delete=models.PROTECT, related_name="bookings", verbose_name=_("clinician")
    )
    # A patient deleted from the archive takes their bookings along.
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="bookings")
    appointment_type = models.ForeignKey(
        AppointmentType,
        on_delete=models.PROTECT,
        related_name="bookings",
        verbose_name=_("appointment type"),
    )
    contact_mode = models.CharField(_("contact mode"), max_length=16, choices=ContactMode.choices)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.BOOKED
    )
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.STAFF)
    notes_for_patient = models.TextField(_("notes shared with the patient"), blank=True)
    internal_notes = models.TextField(_("internal notes (staff only)"), blank=True)
    visit = models.OneToOneField(
        "visits.Visit",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="booking",
    )
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cancel_reason = models.CharField(_("reason for cancelling"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("booking")
        verbose_name_plural = _("bookings")
        ordering = ["starts_at"]
        indexes = [
            models.Index(fields=["clinician", "starts_at"]),
            models.Index(fields=["patient", "starts_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                name="booking_ends_after_start", condition=Q(ends_at__gt=F("starts_at"))
            ),
        ]

    def __str__(self):
        return f"{self.patient} · {self.starts_at:%Y-%m-%d %H:%M}"

    @property
    def is_active(self) -> bool:
        return self.status != self.Status.CANCELLED

    @property
    def visit_held(self) -> bool:
        """Its video visit has begun (the patient was let in): the appointment took place,
        and it can no longer be moved or cancelled, only marked done or missed."""
        return self.visit_id is not None and self.visit.started_at is not None


class BookingHold(models.Model):
    """The time a booking takes in one clinician's calendar: the booking's clinician and each
    additional participant. `active` is false once the booking is cancelled."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="holds")
    clinician = models.ForeignKey(StaffMember, on_delete=models.CASCADE, related_name="holds")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    active = models.BooleanField(default=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["clinician", "starts_at"], condition=Q(active=True), name="hold_active_idx"
            )
        ]
        constraints = [
            models.UniqueConstraint(fields=["booking", "clinician"], name="one_hold_per_clinician"),
            models.CheckConstraint(
                name="hold_ends_after_start", condition=Q(ends_at__gt=F("starts_at"))
            ),
        ]

    def __str__(self):
        return f"{self.clinician} · {self.starts_at:%Y-%m-%d %H:%M}"
