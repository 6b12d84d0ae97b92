import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consulta.accounts.models import Clinic, StaffMember
from consulta.patients.models import Patient

# A visit nobody joined within this time of its start was missed: history, not "upcoming".
MISSED_AFTER = timedelta(hours=2)


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
    # No patient: a first consultation with a guest, who joins through a GuestLink and is
    # known by name only until the doctor saves them as a patient.
    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, null=True, blank=True, related_name="visits"
    )
    guest_name = models.CharField(_("guest's name"), max_length=120, blank=True)
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
    # Each participant's current socket, {peer: channel name}: one per participant, so a
    # socket closing after a newer one of the same person opened is not their leaving.
    sockets = models.JSONField(default=dict, blank=True, editable=False)

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
            # A visit is with a patient or with a guest, never both, never nobody.
            models.CheckConstraint(
                name="visit_has_patient_or_guest",
                condition=(Q(patient__isnull=False) & Q(guest_name=""))
                | (Q(patient__isnull=True) & ~Q(guest_name="")),
            ),
        ]

    def __str__(self):
        return f"{self.participant_name} · {self.scheduled_at:%Y-%m-%d %H:%M}"

    @property
    def participant_name(self) -> str:
        """Who the doctor sees: the patient, or the guest of a visit without a record."""
        return self.patient.full_name if self.patient_id else self.guest_name

    @property
    def is_guest_visit(self) -> bool:
        return self.patient_id is None

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def is_upcoming(self) -> bool:
        """Open and not missed: still scheduled long after its time, it was missed; a patient
        waiting or a call going on is never history, however late."""
        return self.is_open and not (
            self.status == self.Status.SCHEDULED
            and self.scheduled_at < timezone.now() - MISSED_AFTER
        )

    @classmethod
    def upcoming_q(cls) -> Q:
        """is_upcoming, for a query."""
        missed = Q(status=cls.Status.SCHEDULED, scheduled_at__lt=timezone.now() - MISSED_AFTER)
        return Q(status__in=cls.OPEN_STATUSES) & ~missed


class GuestLink(models.Model):
    """The single-use link of a visit with a guest. Only SHA-256 hashes are stored: of the
    token, and of the browser session that redeemed it (which may come back; no other)."""

    visit = models.OneToOneField(Visit, on_delete=models.CASCADE, related_name="guest_link")
    token_hash = models.CharField(max_length=64, unique=True)
    # Set again when the doctor renews the link: the link expires GUEST_LINK_HOURS after it.
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)
    session_key_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = _("guest link")
        verbose_name_plural = _("guest links")

    def __str__(self):
        return f"{self.visit} · {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def expires_at(self):
        return self.created_at + timedelta(hours=settings.GUEST_LINK_HOURS)

    def is_expired(self, now=None) -> bool:
        return (now or timezone.now()) >= self.expires_at


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
