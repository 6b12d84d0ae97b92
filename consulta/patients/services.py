"""Writes on the patient registry. Each checks the role, validates, owns its transaction
(the change and its audit row are written together or not at all), and audits.
Refusals are DomainErrors with a sentence a receptionist understands."""

import logging
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consulta.accounts.models import StaffMember, User
from consulta.accounts.services import login_link_create
from consulta.audit.services import audit_record
from consulta.lib.errors import DomainError
from consulta.notifications.tasks import send_email_message, send_sms_message
from consulta.patients.access import visible_doctor_ids
from consulta.patients.identifiers import (
    national_id_name,
    normalize_national_id,
    normalize_phone,
)
from consulta.patients.models import Patient, PatientBlock

log = logging.getLogger(__name__)

INVITATION_DAYS = 14
State = Patient.State


class DuplicateNationalId(DomainError):
    """The clinic already has a patient with this national identifier."""

    def __init__(self, existing: Patient, country: str):
        super().__init__(
            _("A patient with this %(national_id)s already exists: %(name)s.")
            % {"national_id": national_id_name(country), "name": existing.full_name},
            code="duplicate_national_id",
        )
        self.existing = existing


def patient_create(
    *,
    by: StaffMember,
    doctor: StaffMember,
    first_name: str,
    last_name: str,
    state: str,
    national_id: str = "",
    phone: str = "",
    email: str = "",
) -> Patient:
    _require_registry(by, _("You are not allowed to add patients."))
    if not doctor.is_doctor or doctor.pk not in visible_doctor_ids(by):
        raise DomainError(_("Choose one of the doctors you work with."), code="forbidden")
    if state not in (State.SSN, State.SSN_TEMPORARY, State.PRIVATE):
        raise DomainError(
            _(
                "A new patient is registered with the national health service, "
                "temporarily, or privately."
            ),
            code="invalid_state",
        )
    first_name, last_name = first_name.strip(), last_name.strip()
    if not first_name or not last_name:
        raise DomainError(_("First name and last name are required."), code="required")
    country = by.clinic.country
    national_id = normalize_national_id(country, national_id)
    _require_national_id_for_ssn(state, national_id, country)
    phone = normalize_phone(country, phone)
    email = email.strip().lower()
    with transaction.atomic():
        existing = _existing_with_national_id(by.clinic_id, national_id)
        if existing:
            raise DuplicateNationalId(existing, country)
        try:
            with transaction.atomic():
                patient = Patient.objects.create(
                    clinic_id=by.clinic_id,
                    doctor=doctor,
                    first_name=first_name,
                    last_name=last_name,
                    state=state,
                    national_id=national_id,
                    phone=phone,
                    email=email,
                )
        except IntegrityError:  # added by someone else a moment ago
            raise DuplicateNationalId(
                _existing_with_national_id(by.clinic_id, national_id), country
            ) from None
        audit_record(actor=by.user, action="patient.create", patient=patient, target=patient)
    return patient


def _existing_with_national_id(clinic_id: int, national_id: str) -> Patient | None:
    if not national_id:
        return None
    return Patient.objects.filter(clinic_id=clinic_id, national_id=national_id).first()


@transaction.atomic
def patient_change_state(*, by: StaffMember, patient: Patient, state: str) -> Patient:
    """Doctors move an active patient between national health service and temporary."""
    _require_doctor(by, _("Only a doctor can change a patient's state."))
    if patient.is_archived:
        raise DomainError(_("This patient is in the archive: restore them first."), code="archived")
    if patient.state == State.PRIVATE:
        raise DomainError(
            _(
                "A private patient's state cannot be changed. To register them with the "
                "national health service, move them to the archive, delete them, and add them "
                "again as a national health service patient."
            ),
            code="private",
        )
    if state not in Patient.ACTIVE_SSN_STATES:
        raise DomainError(
            _("To revoke a registration or record a death, move the patient to the archive."),
            code="invalid_state",
        )
    if state != patient.state:
        before = patient.state
        patient.state = state
        patient.save(update_fields=["state", "updated_at"])
        audit_record(
            actor=by.user,
            action="patient.state",
            patient=patient,
            target=patient,
            before=before,
            after=state,
        )
    return patient


@transaction.atomic
def patient_archive(*, by: StaffMember, patient: Patient, reason: str, note: str = "") -> Patient:
    _require_registry(by, _("You are not allowed to archive patients."))
    if patient.is_archived:
        raise DomainError(_("This patient is already in the archive."), code="archived")
    if reason not in Patient.ArchiveReason.values:
        raise DomainError(_("Choose why the patient is moved to the archive."), code="required")
    note = note.strip()
    if reason == Patient.ArchiveReason.OTHER and not note:
        raise DomainError(_("Describe the reason for archiving."), code="required")
    if reason in (State.SSN_REVOKED, State.SSN_DECEASED) and patient.state != State.PRIVATE:
        patient.state = reason
    patient.archived_at = timezone.now()
    patient.archive_reason = reason
    patient.archive_note = note
    patient.save(
        update_fields=["state", "archived_at", "archive_reason", "archive_note", "updated_at"]
    )
    audit_record(
        actor=by.user, action="patient.archive", patient=patient, target=patient, reason=reason
    )
    return patient


@transaction.atomic
def patient_restore(*, by: StaffMember, patient: Patient) -> Patient:
    """Back from the archive: a revoked or deceased registration becomes national health
    service again; a temporary or private patient keeps their state."""
    _require_doctor(by, _("Only a doctor can restore a patient from the archive."))
    if not patient.is_archived:
        raise DomainError(_("This patient is not in the archive."), code="not_archived")
    if patient.state in (State.SSN_REVOKED, State.SSN_DECEASED):
        patient.state = State.SSN
    patient.archived_at = None
    patient.archive_reason = ""
    patient.archive_note = ""
    patient.save(
        update_fields=["state", "archived_at", "archive_reason", "archive_note", "updated_at"]
    )
    audit_record(actor=by.user, action="patient.restore", patient=patient, target=patient)
    return patient


def patient_delete(*, by: StaffMember, patient: Patient) -> None:
    """Delete for good, with the patient's visits. Doctors delete from the archive;
    secretaries also straight from the group practice list (the seed's trash icon)."""
    _require_registry(by, _("You are not allowed to delete patients."))
    if not patient.is_archived and by.is_doctor:
        raise DomainError(
            _(
                "Only patients in the archive can be deleted. Move the patient "
                "to the archive first."
            ),
            code="not_archived",
        )
    with transaction.atomic():
        audit_record(
            actor=by.user,
            action="patient.delete",
            target=patient,
            state=patient.state,
            doctor=patient.doctor_id,
        )
        user = patient.user
        patient.delete()
        if user is not None and not user.is_staff and not hasattr(user, "staff"):
            user.delete()  # the patient's sign-in has nothing left to open


def patient_correct_identity(
    *,
    operator: User,
    patient: Patient,
    first_name: str,
    last_name: str,
    national_id: str,
    reason: str,
) -> Patient:
    """Only platform operators correct names and national identifiers, with a reason."""
    if not operator.is_staff:
        raise DomainError(
            _("Only the platform's operators can correct a patient's identity."), code="forbidden"
        )
    reason = reason.strip()
    if not reason:
        raise DomainError(_("Give the reason for the correction."), code="required")
    first_name, last_name = first_name.strip(), last_name.strip()
    if not first_name or not last_name:
        raise DomainError(_("First name and last name are required."), code="required")
    national_id = normalize_national_id(patient.clinic.country, national_id)
    if patient.national_id:  # a correction may fix it, never take it away
        _require_national_id_for_ssn(patient.state, national_id, patient.clinic.country)
    before = {
        "first_name": patient.first_name,
        "last_name": patient.last_name,
        "national_id": patient.national_id,
    }
    with transaction.atomic():
        existing = _existing_with_national_id(patient.clinic_id, national_id)
        if existing and existing.pk != patient.pk:
            raise DuplicateNationalId(existing, patient.clinic.country)
        patient.first_name, patient.last_name = first_name, last_name
        patient.national_id = national_id
        patient.save(update_fields=["first_name", "last_name", "national_id", "updated_at"])
        if patient.user_id:  # the name they are greeted by when they sign in
            User.objects.filter(pk=patient.user_id).update(
                first_name=first_name, last_name=last_name
            )
        audit_record(
            actor=operator,
            action="patient.correct",
            patient=patient,
            target=patient,
            reason=reason,
            before=before,
            after={"first_name": first_name, "last_name": last_name, "national_id": national_id},
        )
    return patient


DEFAULT_INVITATION = gettext_lazy(
    "Hello, your clinic now offers video visits and secure messages through Consulta. "
    "Open the link below to sign in for the first time."
)


def invitation_language(patient: Patient) -> str:
    """The language the patient reads their invitation in: their own, once they have chosen
    one, else their clinic's."""
    user = patient.user if patient.user_id else None
    return (user.language if user else "") or patient.clinic.default_language


def default_invitation(language: str) -> str:
    with translation.override(language):
        return str(DEFAULT_INVITATION)


# One sentence per language, rather than a language name put into one: Django's names start
# with a capital ("Inglese", "Anglais"), which Italian, French and Norwegian write in lower
# case mid-sentence; translators write each sentence as their language says it. Every language
# of settings.LANGUAGES has one (a test checks).
INVITATION_HINTS = {
    "en": gettext_lazy("The invitation is sent in the patient's language: English."),
    "it": gettext_lazy("The invitation is sent in the patient's language: Italian."),
    "fr": gettext_lazy("The invitation is sent in the patient's language: French."),
    "nb": gettext_lazy("The invitation is sent in the patient's language: Norwegian."),
}


def invitation_hint(language: str) -> str:
    """Says, in the staff member's language, which language the invitation goes out in."""
    return str(INVITATION_HINTS[language])


def patient_invite(*, by: StaffMember, patient: Patient, message: str | None = None) -> Patient:
    """Send the patient a single-use link that signs them in and creates their account: by
    email, and by text message too when their mobile number is known. Patients sign in with
    codes sent by email afterwards, so the account needs the email address. The whole
    message is in the patient's language; without a text of the staff's own, the pre-set
    invitation is written in it too."""
    _require_registry(by, _("You are not allowed to invite patients."))
    if patient.is_archived:
        raise DomainError(_("Patients in the archive cannot be invited."), code="archived")
    if not patient.email:
        raise DomainError(
            _("Add the patient's email address before inviting them."), code="no_email"
        )
    if patient.invitation_status == "joined":
        raise DomainError(
            _("%(name)s already signs in to Consulta: no invitation is needed.")
            % {"name": patient.full_name},
            code="joined",
        )
    with transaction.atomic():
        user = patient.user
        if user is None:
            if User.objects.filter(email__iexact=patient.email).exists():
                raise DomainError(
                    _("This email address already belongs to another account."), code="email_taken"
                )
            user = User.objects.create_user(
                patient.email, None, first_name=patient.first_name, last_name=patient.last_name
            )
            patient.user = user
        token = login_link_create(user=user, minutes=INVITATION_DAYS * 24 * 60)
        link = settings.PUBLIC_URL + reverse("login_link", args=[token])
        patient.invited_at = timezone.now()
        patient.save(update_fields=["user", "invited_at", "updated_at"])
        expires = timezone.localtime() + timedelta(days=INVITATION_DAYS)
        language = invitation_language(patient)
        if message is None:
            message = default_invitation(language)
        with translation.override(language):
            send_email_message.enqueue(
                subject=_("Invitation from %(clinic)s") % {"clinic": by.clinic.name},
                body=f"{message.strip()}\n\n{link}\n\n"
                + _("The link works once and expires on %(date)s.")
                % {"date": date_format(expires, "DATE_FORMAT")},
                to=[patient.email],
            )
            if patient.phone:
                send_sms_message.enqueue(to=patient.phone, body=f"{message.strip()} {link}")
        audit_record(
            actor=by.user,
            action="patient.invite",
            patient=patient,
            target=patient,
            sms=bool(patient.phone),
        )
    return patient


def require_past_date_of_birth(born) -> None:
    if born is not None and born > timezone.localdate():
        raise DomainError(
            _("The date of birth %(date)s is in the future.")
            % {"date": date_format(born, "SHORT_DATE_FORMAT")},
            code="invalid_date",
        )


def _require_national_id_for_ssn(state: str, national_id: str, country: str) -> None:
    if state != State.PRIVATE and not national_id:
        raise DomainError(
            _("The %(national_id)s is required for a patient of the national health service.")
            % {"national_id": national_id_name(country)},
            code="required",
        )


def _require_doctor(by: StaffMember, message) -> None:
    if not by.is_doctor:
        raise DomainError(message, code="forbidden")


def _require_registry(by: StaffMember, message) -> None:
    if not by.works_in_registry:
        raise DomainError(message, code="forbidden")


@transaction.atomic
def patient_block(*, operator: User, patient: Patient, area: str, reason: str) -> PatientBlock:
    """Operators restrict what a patient may do in the app, in one area, with a reason."""
    if not operator.is_staff:
        raise DomainError(_("Only the platform's operators can block a patient."), code="forbidden")
    if area not in PatientBlock.Area.values:
        raise DomainError(_("Choose what to block."), code="required")
    reason = reason.strip()
    if not reason:
        raise DomainError(_("Give the reason for the block."), code="required")
    if patient.blocks.filter(area=area, lifted_at__isnull=True).exists():
        raise DomainError(_("This patient is already blocked there."), code="duplicate")
    block = PatientBlock.objects.create(
        patient=patient, area=area, reason=reason, created_by=operator
    )
    audit_record(
        actor=operator,
        action="patient.block",
        patient=patient,
        target=block,
        area=area,
        reason=reason,
    )
    return block


@transaction.atomic
def patient_unblock(*, operator: User, block: PatientBlock) -> PatientBlock:
    if not operator.is_staff:
        raise DomainError(_("Only the platform's operators can lift a block."), code="forbidden")
    if block.lifted_at is None:
        block.lifted_at = timezone.now()
        block.lifted_by = operator
        block.save(update_fields=["lifted_at", "lifted_by"])
        audit_record(
            actor=operator,
            action="patient.unblock",
            patient=block.patient,
            target=block,
            area=block.area,
        )
    return block


def require_not_blocked(patient: Patient, area: str) -> None:
    """Call before a patient's own action in an area (booking, chat, documents, requests).
    Staff acting for the patient do not call it: a block binds only the patient."""
    block = patient.blocks.filter(area=area, lifted_at__isnull=True).first()
    if block is not None:
        raise DomainError(
            _(
                "Your clinic has restricted this for your account: %(area)s. Please contact "
                "the clinic."
            )
            % {"area": block.get_area_display()},
            code="blocked",
        )


def sign_in_owners(emails: list[str]) -> dict[str, int]:
    """{address: id of the account that signs in with it}, for those of `emails` (lower
    case) that an account has, in one query per 500 addresses."""
    owners = {}
    for start in range(0, len(emails), 500):
        owners.update(
            User.objects.annotate(address=Lower("email"))
            .filter(address__in=emails[start : start + 500])
            .values_list("address", "pk")
        )
    return owners


def sign_in_address_taken(email: str, user_id: int) -> bool:
    email = email.lower()
    return sign_in_owners([email]).get(email, user_id) != user_id


def set_sign_in_address(user_id: int, email: str) -> None:
    """A patient with an account signs in with codes sent to their email address: it follows
    the record's (checked by the caller: not empty, not another account's)."""
    User.objects.filter(pk=user_id).update(email=email)
    EmailAddress.objects.filter(user_id=user_id).update(email=email)


def _move_sign_in_address(user: User, email: str) -> None:
    if not email:
        raise DomainError(
            _("This patient signs in with their email address: it cannot be removed."),
            code="email_required",
        )
    if sign_in_address_taken(email, user.pk):
        raise DomainError(
            _("This email address already belongs to another account."), code="email_taken"
        )
    set_sign_in_address(user.pk, email)
    user.email = email


@transaction.atomic
def patient_update_contacts(
    *, by: StaffMember, patient: Patient, email: str, phone: str, date_of_birth=None
) -> Patient:
    """Contacts and date of birth may change; names and the national identifier may not."""
    _require_registry(by, _("You are not allowed to change patients."))
    phone = normalize_phone(by.clinic.country, phone)
    email = email.strip().lower()
    require_past_date_of_birth(date_of_birth)
    changed = {
        field: value
        for field, value in (("email", email), ("phone", phone), ("date_of_birth", date_of_birth))
        if getattr(patient, field) != value
    }
    if "email" in changed and patient.user_id:
        _move_sign_in_address(patient.user, email)
    if changed:
        for field, value in changed.items():
            setattr(patient, field, value)
        patient.save(update_fields=[*changed, "updated_at"])
        audit_record(
            actor=by.user,
            action="patient.contacts",
            patient=patient,
            target=patient,
            fields=sorted(changed),
        )
    return patient
