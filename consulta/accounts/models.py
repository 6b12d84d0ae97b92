import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email, password, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """Anyone who signs in: clinic staff, patients and platform operators (is_staff)."""

    email = models.EmailField(_("email"), unique=True)
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES, blank=True)
    is_staff = models.BooleanField(
        _("platform operator"),
        default=False,
        help_text=_("Operators run the installation and may use the admin site."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self):
        return self.get_full_name() or self.email

    def get_full_name(self):
        return f"{self.first_name} {self.last_name}".strip()

    def get_short_name(self):
        return self.first_name or self.email


def _validate_time_zone(value):
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


class Clinic(models.Model):
    class Country(models.TextChoices):
        ITALY = "IT", _("Italy")
        FRANCE = "FR", _("France")
        NORWAY = "NO", _("Norway")
        UNITED_KINGDOM = "GB", _("United Kingdom")
        IRELAND = "IE", _("Ireland")

    name = models.CharField(_("name"), max_length=200)
    country = models.CharField(_("country"), max_length=2, choices=Country.choices)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Rome", validators=[_validate_time_zone]
    )
    default_language = models.CharField(
        _("default language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    require_mfa = models.BooleanField(
        _("require two-factor authentication for staff"), default=False
    )
    # The join window of a video visit: when a patient may enter the waiting room.
    join_minutes_before = models.PositiveSmallIntegerField(
        _("patients may enter a video visit up to (minutes before)"),
        default=10,
        validators=[MaxValueValidator(24 * 60)],
    )
    join_minutes_after = models.PositiveSmallIntegerField(
        _("and up to (minutes after its start)"),
        default=120,
        validators=[MaxValueValidator(24 * 60)],
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("clinic")
        verbose_name_plural = _("clinics")

    def __str__(self):
        return self.name


class StaffMember(models.Model):
    """A user's place in a clinic. One clinic per staff user (see docs/decisions.md)."""

    class Role(models.TextChoices):
        DOCTOR = "DOCTOR", _("Doctor")
        SECRETARY = "SECRETARY", _("Secretary")
        CLINIC_ADMIN = "CLINIC_ADMIN", _("Clinic administrator")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff"
    )
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="staff")
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    title = models.CharField(_("title"), max_length=40, blank=True, help_text=_("e.g. Dr."))

    class Meta:
        verbose_name = _("staff member")
        verbose_name_plural = _("staff members")

    def __str__(self):
        name = self.user.get_full_name() or self.user.email
        return f"{self.title} {name}".strip()

    @property
    def is_doctor(self) -> bool:
        return self.role == self.Role.DOCTOR

    @property
    def works_in_registry(self) -> bool:
        """Doctors and secretaries keep the patient registry; administrators do not."""
        return self.role in (self.Role.DOCTOR, self.Role.SECRETARY)


class CareTeam(models.Model):
    class Kind(models.TextChoices):
        GROUP = "GROUP", _("Group practice")
        NETWORK = "NETWORK", _("Network")

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="care_teams")
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    # Doctors, and the secretaries who serve the team.
    members = models.ManyToManyField(
        StaffMember,
        related_name="care_teams",
        verbose_name=_("members"),
        limit_choices_to={"role__in": [StaffMember.Role.DOCTOR, StaffMember.Role.SECRETARY]},
    )

    class Meta:
        verbose_name = _("care team")
        verbose_name_plural = _("care teams")

    def __str__(self):
        return self.name


class LoginLink(models.Model):
    """A one-time sign-in link. Only the SHA-256 of the token is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="login_links"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("sign-in link")
        verbose_name_plural = _("sign-in links")

    def __str__(self):
        return f"{self.user} until {self.expires_at:%Y-%m-%d %H:%M}"
