from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from consulta.accounts.models import Clinic, StaffMember


class Patient(models.Model):
    """The minimal record; the registry issue adds states, national ids and the archive."""

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
    date_of_birth = models.DateField(_("date of birth"), null=True, blank=True)
    email = models.EmailField(_("email"), blank=True)
    phone = models.CharField(_("mobile phone"), max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        ordering = ["last_name", "first_name"]
        indexes = [models.Index(fields=["clinic", "last_name", "first_name"])]

    def __str__(self):
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"
