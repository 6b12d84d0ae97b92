import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from consulta.accounts.models import Clinic, StaffMember
from consulta.patients.models import Patient


class Visit(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        WAITING = "waiting", _("Patient waiting")
        IN_CALL = "in_call", _("In progress")
        ENDED = "ended", _("Ended")

    OPEN_STATUSES = (Status.SCHEDULED, Status.WAITING, Status.IN_CALL)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="visits")
    # A patient deleted from the archive takes their visits along (patients/services.py).
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="visits")
    doctor = models.ForeignKey(StaffMember, on_delete=models.PROTECT, related_name="visits")
    scheduled_at = models.DateTimeField(_("scheduled for"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.SCHEDULED
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    ready_at = models.DateTimeField(_("patient ready at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    # What the doctor tells the patient in the waiting room ("I'm running 10 minutes late"):
    # stored, so that a patient who reconnects reads it too.
    # When the doctor first opened the room: the patient is told once, not on every reload.
    doctor_entered_at = models.DateTimeField(null=True, blank=True)
    waiting_message = models.CharField(
        _("message to the waiting patient"), max_length=300, blank=True
    )
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("video visit")
        verbose_name_plural = _("video visits")
        ordering = ["scheduled_at"]
        indexes = [
            models.Index(fields=["doctor", "status", "scheduled_at"]),
            models.Index(fields=["patient", "scheduled_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                name="visit_ends_after_it_starts",
                condition=Q(ended_at__isnull=True)
                | Q(started_at__isnull=True)
                | Q(ended_at__gte=F("started_at")),
            ),
            models.CheckConstraint(
                name="visit_ended_has_end_time",
                condition=~Q(status="ended") | Q(ended_at__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.patient} · {self.scheduled_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class RoomSettings(models.Model):
    """How one patient's video visits look and announce themselves (the doctor decides)."""

    patient = models.OneToOneField(Patient, on_delete=models.CASCADE, related_name="room_settings")
    shows_self_view = models.BooleanField(_("the patient sees their own image"), default=True)
    shows_elapsed_time = models.BooleanField(_("the patient sees the elapsed time"), default=True)
    notify_when_doctor_enters = models.BooleanField(
        _("tell the patient when the doctor enters the room"), default=False
    )
    notify_text = models.CharField(
        _("text of that message"),
        max_length=300,
        blank=True,
        help_text=_("For example: “Your doctor is ready for you: open the visit now.”"),
    )
    notify_by_email = models.BooleanField(_("by email"), default=True)
    notify_by_sms = models.BooleanField(_("by text message"), default=False)

    class Meta:
        verbose_name = _("video visit settings")
        verbose_name_plural = _("video visit settings")

    def __str__(self):
        return str(self.patient)
