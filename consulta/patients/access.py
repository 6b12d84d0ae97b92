"""Permission-checked lookups of patients. Every read of a record goes through here."""

from django.db.models import Q, QuerySet
from django.http import Http404

from consulta.accounts.models import StaffMember
from consulta.audit.services import audit_record
from consulta.patients.models import Patient


def patients_visible_to(staff: StaffMember) -> QuerySet[Patient]:
    """A doctor sees their own patients and those of the doctors in their group practices;
    secretaries and clinic administrators see the clinic's patients."""
    qs = Patient.objects.filter(clinic_id=staff.clinic_id)
    if staff.role == StaffMember.Role.DOCTOR:
        qs = qs.filter(
            Q(doctor=staff) | Q(doctor__care_teams__members=staff, doctor__care_teams__kind="GROUP")
        ).distinct()
    return qs


def patient_for_staff(staff: StaffMember | None, pk: int, *, action: str = "patient.read"):
    """Return the patient or raise 404 for anyone outside its care; audit the read."""
    if staff is None:
        raise Http404
    patient = patients_visible_to(staff).select_related("doctor__user").filter(pk=pk).first()
    if patient is None:
        raise Http404
    audit_record(actor=staff.user, action=action, patient=patient, target=patient)
    return patient
