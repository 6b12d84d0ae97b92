"""Permission-checked lookups for calendars and bookings.

Doctors and secretaries see the calendars of the doctors they work with (their own and their
care teams'); clinic administrators configure every calendar of the clinic but see no
bookings (they hold patient data); doctors configure their own calendar. Patients see their
own bookings. Anyone else gets 404."""

from django.db.models import QuerySet
from django.http import Http404

from consulta.accounts.models import StaffMember
from consulta.audit.services import audit_record
from consulta.patients.access import visible_doctor_ids
from consulta.patients.models import Patient
from consulta.scheduling.models import AppointmentType, Booking


def calendar_doctors(staff: StaffMember | None) -> QuerySet[StaffMember]:
    """The doctors whose calendars `staff` may open and book in."""
    if staff is None or not staff.works_in_registry:
        raise Http404
    return (
        StaffMember.objects.filter(pk__in=visible_doctor_ids(staff), role=StaffMember.Role.DOCTOR)
        .select_related("user")
        .order_by("user__last_name", "user__first_name")
    )


def calendar_doctor_for_staff(staff: StaffMember | None, pk) -> StaffMember:
    if not str(pk or "").isdigit():
        raise Http404
    doctor = calendar_doctors(staff).filter(pk=int(pk)).first()
    if doctor is None:
        raise Http404
    return doctor


def configurable_doctors(staff: StaffMember | None) -> QuerySet[StaffMember]:
    """The calendars `staff` may configure: all the clinic's for its administrators, their
    own for doctors."""
    if staff is None:
        raise Http404
    doctors = StaffMember.objects.filter(
        clinic_id=staff.clinic_id, role=StaffMember.Role.DOCTOR
    ).select_related("user")
    if staff.role == StaffMember.Role.CLINIC_ADMIN:
        return doctors.order_by("user__last_name", "user__first_name")
    if staff.is_doctor:
        return doctors.filter(pk=staff.pk)
    raise Http404


def appointment_types_for_config(staff: StaffMember | None) -> QuerySet[AppointmentType]:
    """Clinic-wide types and those of the calendars `staff` configures."""
    doctors = configurable_doctors(staff)
    qs = AppointmentType.objects.filter(clinic_id=staff.clinic_id)
    if staff.role == StaffMember.Role.CLINIC_ADMIN:
        return qs
    return qs.filter(clinician__in=doctors)


def appointment_type_for_config(staff: StaffMember | None, pk) -> AppointmentType:
    kind = appointment_types_for_config(staff).filter(pk=pk).first()
    if kind is None:
        raise Http404
    return kind


def bookings_visible_to(staff: StaffMember | None) -> QuerySet[Booking]:
    doctors = calendar_doctors(staff)
    return Booking.objects.filter(clinic_id=staff.clinic_id, clinician__in=doctors)


def booking_for_staff(staff: StaffMember | None, pk, *, action="booking.read") -> Booking:
    """A booking in a calendar `staff` works with, or 404; the read is audited."""
    booking = (
        bookings_visible_to(staff)
        .select_related("patient", "clinician__user", "appointment_type", "visit")
        .filter(pk=pk)
        .first()
    )
    if booking is None:
        raise Http404
    audit_record(actor=staff.user, action=action, patient=booking.patient, target=booking)
    return booking


def booking_for_patient(patient: Patient | None, pk) -> Booking:
    if patient is None:
        raise Http404
    booking = (
        Booking.objects.filter(patient=patient, pk=pk)
        .select_related("clinician__user", "appointment_type", "visit")
        .first()
    )
    if booking is None:
        raise Http404
    return booking
