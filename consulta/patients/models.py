import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q, TextField, Value
from django.db.models.functions import Concat
from django.utils.translation import gettext_lazy as _

from consulta.accounts.models import Clinic, StaffMember
from consulta.lib.folding import Folded


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

    # No index of their own: the indexes below start with these columns.
    clinic = models.ForeignKey(
        Clinic,
        on_delete=models.PROTECT,
        related_name="patients",
        db_index=False,
        verbose_name=_("clinic"),
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="patient",
        verbose_name=_("sign-in account"),
        help_text=_("The patient's own user account, once they have one."),
    )
    doctor = models.ForeignKey(
        StaffMember,
        on_delete=models.PROTECT,
        related_name="patients",
        verbose_name=_("associated doctor"),
        limit_choices_to={"role": StaffMember.Role.DOCTOR},
        db_index=False,
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
    created_at = models.DateTimeField(_("added on"), auto_now_add=True)
    updated_at = models.DateTimeField(_("last changed"), auto_now=True)
    # What the registry's search looks into, kept by the database (see search.py): names and
    # phone, upper-cased and without accents ("NICCOLO"), with one trigram index on
    # PostgreSQL, so that any piece of them is found. The
    # national id and the email are looked up from their start, in b-tree indexes: their
    # trigrams cost an import a third of the database's time, for searches nobody makes. Fields are
    # separated by a space, and search words never contain one, so a word never matches
    # across two fields.
    search_text = models.GeneratedField(
        expression=Folded(
            Concat(
                "last_name",
                Value(" "),
                "first_name",
                Value(" "),
                "phone",
                output_field=TextField(),
            )
        ),
        output_field=TextField(),
        db_persist=True,
        editable=False,
    )

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        ordering = ["last_name", "first_name"]
        indexes = [
            # With the id, the export's ORDER BY last_name, first_name, id needs no sort.
            models.Index(
                fields=["clinic", "last_name", "first_name", "id"], name="patient_clinic_name_idx"
            ),
            models.Index(fields=["doctor", "archived_at", "state"]),
        ]
        constraints = [
            # text_pattern_ops (PostgreSQL): the search's `LIKE 'RSSMRA%'` reads it too.
            models.UniqueConstraint(
                fields=["clinic", "national_id"],
                condition=~Q(national_id=""),
                name="patient_national_id_unique_per_clinic",
                opclasses=["int8_ops", "text_pattern_ops"],
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
    def state_label(self) -> str:
        """get_state_display() without rebuilding the choices for every row of a list."""
        return self.State(self.state).label

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def invitation_status(self) -> str:
        if self.user_id and self.user.last_login:
            return "joined"
        return "invited" if self.invited_at else "never"


class PatientBlock(models.Model):
    """An operator's restriction of what a patient may do in the app; staff are not bound."""

    class Area(models.TextChoices):
        AGENDA = "agenda", _("Agenda (booking on their own)")
        CHAT = "chat", _("Chat")
        DOCUMENTS = "documents", _("Medical documents")
        REQUESTS = "requests", _("Patient requests")

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="blocks")
    area = models.CharField(_("area"), max_length=16, choices=Area.choices)
    reason = models.CharField(_("reason"), max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("patient block")
        verbose_name_plural = _("patient blocks")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "area"],
                condition=Q(lifted_at__isnull=True),
                name="one_active_block_per_area",
            ),
        ]

    def __str__(self):
        return f"{self.patient} · {self.get_area_display()}"


class PatientImport(models.Model):
    """One upload of a patient list: analysed into a preview, then applied on confirmation."""

    class Format(models.TextChoices):
        LIST = "list", _("Patient list (CSV or XLSX)")
        SISS = "siss", _("Lombardy regional system (SISS)")

    class Status(models.TextChoices):
        ANALYSING = "analysing", _("Reading the file")
        PREVIEW = "preview", _("Ready to confirm")
        APPLYING = "applying", _("Importing")
        APPLIED = "applied", _("Imported")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    RUNNING = (Status.ANALYSING, Status.APPLYING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    clinic = models.ForeignKey(
        Clinic, on_delete=models.CASCADE, related_name="+", verbose_name=_("clinic")
    )
    doctor = models.ForeignKey(
        StaffMember, on_delete=models.CASCADE, related_name="imports", verbose_name=_("doctor")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("started by"),
    )
    format = models.CharField(_("format"), max_length=8, choices=Format.choices)
    archive_missing = models.BooleanField(_("archive the patients no longer listed"), default=False)
    filename = models.CharField(_("file"), max_length=255)
    language = models.CharField(max_length=8, blank=True)  # of the messages in the preview
    content = models.BinaryField()
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ANALYSING
    )
    total = models.PositiveIntegerField(_("rows"), default=0)
    processed = models.PositiveIntegerField(_("rows checked"), default=0)
    summary = models.JSONField(_("summary"), default=dict)
    preview = models.JSONField(_("preview"), default=dict)
    errors_csv = models.TextField(_("invalid rows"), blank=True)
    failure = models.TextField(_("why it failed"), blank=True)
    created_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("patient import")
        verbose_name_plural = _("patient imports")
        ordering = ["-created_at"]
        constraints = [
            # Two imports for one doctor never run at once.
            models.UniqueConstraint(
                fields=["doctor"],
                condition=Q(status__in=["analysing", "applying"]),
                name="one_running_import_per_doctor",
            ),
        ]

    def __str__(self):
        return f"{self.filename} ({self.get_status_display()})"
