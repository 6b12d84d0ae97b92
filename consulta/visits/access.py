"""Permission-checked lookups of visits."""

import logging
import uuid
from typing import Literal

from django.db.models import QuerySet
from django.http import Http404

from consulta.accounts.models import StaffMember
from consulta.audit.services import audit_record
from consulta.patients.models import Patient
from consulta.visits.models import Visit

Role = Literal["doctor", "patient"]
log = logging.getLogger("consulta.access")


def visits_for_staff(staff: StaffMember) -> QuerySet[Visit]:
    """Doctors see their own visits; secretaries and administrators the clinic's."""
    qs = Visit.objects.filter(clinic_id=staff.clinic_id).select_related("patient", "doctor__user")
    if staff.is_doctor:
        qs = qs.filter(doctor=staff)
    return qs


def visits_for_patient(patient: Patient) -> QuerySet[Visit]:
    return Visit.objects.filter(patient=patient).select_related("doctor__user")


def participant_role(user, visit: Visit) -> Role | None:
    """Only the visit's doctor and the visit's patient take part; nobody else in the clinic."""
    if not user.is_authenticated or not user.is_active:
        return None
    if visit.doctor.user_id == user.id:
        return "doctor"
    if visit.patient.user_id is not None and visit.patient.user_id == user.id:
        return "patient"
    return None


def visit_for_participant(user, visit_id) -> tuple[Visit, Role]:
    """Return the visit and the user's role in it, or raise 404; audit the access."""
    try:
        visit_uuid = uuid.UUID(str(visit_id))
    except ValueError:
        raise Http404 from None
    visit = (
        Visit.objects.select_related("patient", "doctor__user", "clinic")
        .filter(pk=visit_uuid)
        .first()
    )
    role = participant_role(user, visit) if visit is not None else None
    if role is None:
        log.warning("visit %s refused to user %s: not a participant", visit_uuid, user.pk)
        raise Http404
    audit_record(actor=user, action="visit.open", patient=visit.patient, target=visit, role=role)
    return visit, role
