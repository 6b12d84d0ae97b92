import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consulta.accounts.models import Clinic, StaffMember


class InternalCall(models.Model):
    """A video call between two staff members of one clinic: it rings, then is accepted,
    declined, missed (nobody answered in time) or cancelled (by the caller); an accepted
    call ends when either hangs up."""

    class Status(models.TextChoices):
        RINGING = "ringing", _("Ringing")
        ACCEPTED = "accepted", _("In progress")
        DECLINED = "declined", _("Declined")
        MISSED = "missed", _("No answer")
        CANCELLED = "cancelled", _("Cancelled")
        ENDED = "ended", _("Ended")

    LIVE_STATUSES = (Status.RINGING, Status.ACCEPTED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="internal_calls")
    caller = models.ForeignKey(StaffMember, on_delete=models.PROTECT, related_name="calls_made")
    callee = models.ForeignKey(StaffMember, on_delete=models.PROTECT, related_name="calls_received")
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.RINGING
    )
    created_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Since when no call page of that person holds the accepted call (they closed or
    # reloaded it, or its socket went stale); cleared when a page of theirs is back. Away
    # for the reconnection grace period, they have hung up (services.calls_end_abandoned).
    caller_away_since = models.DateTimeField(null=True, blank=True)
    callee_away_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("internal call")
        verbose_name_plural = _("internal calls")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["clinic", "status"]),
            models.Index(fields=["callee", "status"]),
            models.Index(fields=["caller", "status"]),
        ]
        constraints = [
            models.CheckConstraint(name="call_not_to_oneself", condition=~Q(caller=F("callee"))),
            models.CheckConstraint(
                name="call_over_has_end_time",
                condition=Q(status__in=["ringing", "accepted"]) | Q(ended_at__isnull=False),
            ),
            # The services lock both people's rows before ringing; these catch what a bug
            # or a race would still let through: one live call per person and side.
            models.UniqueConstraint(
                fields=["caller"],
                condition=Q(status__in=["ringing", "accepted"]),
                name="one_live_call_per_caller",
            ),
            models.UniqueConstraint(
                fields=["callee"],
                condition=Q(status__in=["ringing", "accepted"]),
                name="one_live_call_per_callee",
            ),
        ]

    def __str__(self):
        return f"{self.caller} → {self.callee} · {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE_STATUSES

    def other(self, staff_id: int) -> StaffMember:
        return self.callee if staff_id == self.caller_id else self.caller


class StaffConnection(models.Model):
    """One open socket of a staff member: a page's staff socket, or a call page's call
    socket (`call` set). Presence is read from these rows, so that every server process
    sees the same thing and a crashed process cannot leave anyone online for ever: a row
    counts only while its heartbeat is fresh (calls/presence.py). One row per socket rather
    than a counter per person: a counter drifts when a process dies without decrementing
    it; rows are simply stale, and swept."""

    staff = models.ForeignKey(StaffMember, on_delete=models.CASCADE, related_name="connections")
    channel_name = models.CharField(max_length=200, unique=True)
    call = models.ForeignKey(
        InternalCall, on_delete=models.CASCADE, null=True, blank=True, related_name="connections"
    )
    connected_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)
    # A call page's socket: when the server made the page (of two call pages of one person,
    # the newer stays: consumers.CallConsumer).
    page_opened = models.FloatField(null=True, blank=True)

    class Meta:
        verbose_name = _("open connection")
        verbose_name_plural = _("open connections")

    def __str__(self):
        return f"{self.staff} · {self.last_seen:%H:%M:%S}"


class RingSettings(models.Model):
    """How incoming calls ring for one person. The tones are synthesised in the browser
    (static/consulta/js/ring.js): no audio files."""

    class Tone(models.TextChoices):
        CLASSIC = "classic", _("Classic telephone")
        CHIME = "chime", _("Chime")
        PULSE = "pulse", _("Pulse")
        SOFT = "soft", _("Soft marimba")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ring_settings"
    )
    tone = models.CharField(_("ringtone"), max_length=16, choices=Tone.choices, default="classic")
    volume = models.PositiveSmallIntegerField(
        _("volume"), default=70, validators=[MaxValueValidator(100)]
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("ringtone settings")
        verbose_name_plural = _("ringtone settings")
        constraints = [
            models.CheckConstraint(name="ring_volume_0_to_100", condition=Q(volume__lte=100))
        ]

    def __str__(self):
        return f"{self.user} · {self.tone} {self.volume}"
