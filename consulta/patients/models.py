from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from consulta.accounts.models import Clinic, StaffMember


class Patient(models.Model):
    class State(models.TextChoices):
        SSN = "SSN", _("National health service")
        SSN_TEMPORARY = "SSN_TEMPORARY", _("National health service, temporary")
        SSN_REVOKED = "SSN_REVOKED", _("National health service, revoked")
        SSN_DECEASED = "SSN_DECEASED", _("National health service, deceased")
        PRIVATE = "PRIVATE", _("Private")

    class ArchiveReason(models.TextChoices):
        SSN_REVOKED = "SSN_REVOKED", _("Registration revoked")
        SSN_DECEASED = "SSN_DECEASED", _("Deceased")
        OTHER = "OTHER", _("Other")

    # States a patient of the national service may be moved between on the active list.
    ACTIVE_SSN_STATES = (State.SSN, State.SSN_TEMPORARY)

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="patients")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="patient",
        help_text=_("The patient's own user account, once they have one."),
    )
    doctor = models.ForeignKey(
        StaffMember,
        on_delete=models.PROTECT,
        related_name="patients",
        verbose_name=_("associated doctor"),
        limit_choices_to={"role": StaffMember.Role.DOCTOR},
    )
    first_name = models.CharField(_("first name"), max_length=150)
    last_name = models.CharField(_("last name"), max_length=150)
    national_id = models.CharField(
        _("national identifier"),
        max_length=32,
        blank=True,
        help_text=_("Codice fiscale, fødselsnummer or D-number, NIR, NHS or PPS number."),
    )
    date_of_birth = models.DateField(_("date of birth"), null=True, blank=True)
    email = models.EmailField(_("email"), blank=True)
    phone = models.CharField(_("mobile phone"), max_length=32, blank=True)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.SSN)
    archived_at = models.DateTimeField(_("archived at"), null=True, blank=True)
    archive_reason = models.CharField(
        _("reason for archiving"), max_length=16, choices=ArchiveReason.choices, blank=True
    )
    archive_note = models.CharField(_("note"), max_length=500, blank=True)
    invited_at = models.DateTimeField(_("invited at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        ordering = ["last_name", "first_name"]
        indexes = [
            models.Index(fields=["clinic", "last_name", "first_name"]),
            models.Index(fields=["doctor", "archived_at", "state"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "national_id"],
                condition=~Q(national_id=""),
                name="patient_national_id_unique_per_clinic",
            ),
            models.CheckConstraint(
                name="patient_archived_has_reason",
                condition=Q(archived_at__isnull=True) | ~Q(archive_reason=""),
            ),
        ]

    def __str__(self):
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def invitation_status(self) -> str:
        if self.user_id and self.user.last_login:
            return "joined"
        return "invited" if self.invited_at else "never"
