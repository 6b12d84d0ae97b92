"""Permission-checked lookups of visits."""

import logging
import uuid
from typing import Literal

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from consulta.accounts.models import StaffMember
from consulta.accounts.services import hash_token
from consulta.audit.services import audit_record
from consulta.patients.models import Patient
from consulta.visits.models import GuestLink, Visit

# doctor: the visit's own doctor, who admits and ends; clinician: another doctor scheduled
# on the visit's booking, who joins the call; patient: the visit's patient, or its guest
# (a browser that redeemed the visit's guest link: see is_guest_of).
Role = Literal["doctor", "clinician", "patient"]
log = logging.getLogger("consulta.access")
# In a guest's (anonymous) session: the ids of the visits whose guest link it redeemed.
GUEST_VISITS_SESSION_KEY = "guest_visits"


def visits_for_staff(staff: StaffMember) -> QuerySet[Visit]:
    """Doctors see their own visits and those they are scheduled to join; secretaries and
    administrators the clinic's."""
    qs = Visit.objects.filter(clinic_id=staff.clinic_id).select_related("patient", "doctor__user")
    if staff.is_doctor:
        qs = qs.filter(
            Q(doctor=staff) | Exists(_holds(staff).filter(booking__visit=OuterRef("pk")))
        )
    return qs


def _holds(staff: StaffMember):
    from consulta.scheduling.models import BookingHold

    return BookingHold.objects.filter(clinician=staff, active=True)


def extra_clinician_ids(visit: Visit) -> list[int]:
    """The other doctors scheduled on the visit's booking, in the order they were added."""
    from consulta.scheduling.models import BookingHold

    return list(
        BookingHold.objects.filter(booking__visit=visit, active=True)
        .exclude(clinician_id=visit.doctor_id)
        .order_by("pk")
        .values_list("clinician_id", flat=True)
    )


def has_seat(visit: Visit, staff_id: int) -> bool:
    """A call is peer to peer between every two participants (a mesh): the visit's doctor,
    the patient and the first VISIT_MAX_PARTICIPANTS - 2 other doctors have a seat."""
    seats = settings.VISIT_MAX_PARTICIPANTS - 2
    return staff_id in extra_clinician_ids(visit)[:seats]


def visits_for_patient(patient: Patient) -> QuerySet[Visit]:
    return Visit.objects.filter(patient=patient).select_related("doctor__user")


def participant_role(user, visit: Visit) -> Role | None:
    """The visit's doctor, the visit's patient and the other doctors scheduled on its
    booking take part; nobody else in the clinic."""
    if not user.is_authenticated or not user.is_active:
        return None
    if visit.doctor.user_id == user.id:
        return "doctor"
    if visit.patient is not None and visit.patient.user_id == user.id:
        return "patient"
    from consulta.scheduling.models import BookingHold

    if BookingHold.objects.filter(
        booking__visit=visit, active=True, clinician__user=user, clinician__clinic=visit.clinic_id
    ).exists():
        return "clinician"
    return None


def participant_peer(visit: Visit, role: Role, user) -> tuple[str, str]:
    """The participant's `peer` in the signalling protocol and the name the others see."""
    if role == "patient" and is_guest(visit, role, user):
        return guest_peer(visit), visit.participant_name
    if role == "patient":
        return f"p{visit.patient_id}", visit.patient.full_name
    staff = (
        visit.doctor
        if role == "doctor"
        else StaffMember.objects.select_related("user").get(user=user, clinic_id=visit.clinic_id)
    )
    return f"d{staff.pk}", str(staff)


def visit_for_participant(user, visit_id, session=None) -> tuple[Visit, Role]:
    """Return the visit and the user's role in it, or raise 404; audit the access. With the
    browser's session, the visit's guest is let in too, as the patient."""
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
    if role is None and visit is not None and is_guest_of(visit, session):
        role = "patient"
    if role is None:
        log.warning("visit %s refused to user %s: not a participant", visit_uuid, user.pk)
        raise Http404
    extra = {"guest": True} if is_guest(visit, role, user) else {}
    audit_record(
        actor=user, action="visit.open", patient=visit.patient, target=visit, role=role, **extra
    )
    return visit, role


# --- guests: a visit without a patient record ------------------------------------------


def guest_peer(visit: Visit) -> str:
    # After the doctors' "d…" peers: the doctors offer to the guest, as to a patient.
    return f"g{visit.pk.hex[:12]}"


def is_guest(visit: Visit, role: Role, user) -> bool:
    """The patient's seat is taken through the guest link, not by the patient's account."""
    return role == "patient" and not (
        visit.patient is not None and user.is_authenticated and visit.patient.user_id == user.id
    )


def holds_guest_visit(session, visit_id) -> bool:
    """The session says it redeemed this visit's guest link: cheap, and not proof (see
    is_guest_of); lets a guest past the pages' and the socket's sign-in check."""
    if session is None:
        return False
    return str(visit_id) in session.get(GUEST_VISITS_SESSION_KEY, [])


def is_guest_of(visit: Visit, session) -> bool:
    """This browser session redeemed the visit's guest link, the link has not been renewed
    or expired since, and the visit has not ended."""
    if not holds_guest_visit(session, visit.pk) or not session.session_key or not visit.is_open:
        return False
    link = GuestLink.objects.filter(visit=visit).first()
    return (
        link is not None
        and link.used_at is not None
        and link.session_key_hash == hash_token(session.session_key)
        and not link.is_expired()
    )


def guest_visit_for_doctor(staff: StaffMember, visit_id) -> Visit:
    """A visit with a guest, for its own doctor only (to save the guest as a patient), or
    404; audit the access."""
    try:
        visit_uuid = uuid.UUID(str(visit_id))
    except ValueError:
        raise Http404 from None
    visit = (
        Visit.objects.select_related("doctor__user", "clinic")
        .filter(pk=visit_uuid, doctor=staff, patient__isnull=True)
        .first()
    )
    if visit is None:
        log.warning("guest visit %s refused to staff %s", visit_uuid, staff.pk)
        raise Http404
    audit_record(actor=staff.user, action="visit.open", target=visit, role="doctor")
    return visit
