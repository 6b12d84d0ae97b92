"""The patient's side: book online, see and cancel their bookings."""

from collections import defaultdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from consulta.lib.errors import DomainError
from consulta.patients.models import PatientBlock
from consulta.patients.services import require_not_blocked
from consulta.scheduling import services
from consulta.scheduling.access import booking_for_patient
from consulta.scheduling.forms import parse_slot_start
from consulta.scheduling.models import Booking, ContactMode

SHOWN_DAYS = 14


def _patient(request):
    if request.patient is None:
        raise Http404
    return request.patient


def _blocked_message(patient) -> str:
    try:
        require_not_blocked(patient, PatientBlock.Area.AGENDA)
    except DomainError as refusal:
        return refusal.message
    return ""


@login_required
def book_online(request):
    patient = _patient(request)
    by_doctor = defaultdict(list)
    for doctor, kind in services.online_choices(patient):
        by_doctor[doctor].append(kind)
    return render(
        request,
        "scheduling/book_online.html",
        {"choices": dict(by_doctor), "blocked": _blocked_message(patient)},
    )


def _choice(patient, doctor_id: int, type_id: int):
    for doctor, kind in services.online_choices(patient):
        if doctor.pk == doctor_id and kind.pk == type_id:
            return doctor, kind
    raise Http404


@login_required
def book_online_slots(request, doctor_id, type_id):
    patient = _patient(request)
    doctor, kind = _choice(patient, doctor_id, type_id)
    if request.method == "POST":
        starts_at = parse_slot_start(request.POST.get("start"))
        mode = request.POST.get("contact_mode") or None
        try:
            if starts_at is None:
                raise DomainError(_("Choose one of the free times."))
            services.booking_book_online(
                patient=patient,
                clinician=doctor,
                kind=kind,
                starts_at=starts_at,
                contact_mode=mode,
                notes_for_patient="",
            )
        except DomainError as refusal:
            messages.error(request, refusal.message)
            return redirect("book_online_slots", doctor.pk, kind.pk)
        messages.success(request, _("Your appointment is booked. A confirmation is on its way."))
        return redirect("my_bookings")
    obstacles = [
        o
        for o in services.online_obstacles(patient=patient, clinician=doctor, kind=kind)
        if o.code not in ("no_free_time",)
    ]
    tz = services.clinic_tz(patient.clinic)
    days = defaultdict(list)
    for slot in services.online_slots(clinician=doctor, kind=kind, days=SHOWN_DAYS):
        days[slot.starts_at.astimezone(tz).date()].append(slot)
    modes = [(m, ContactMode(m).label) for m in kind.contact_modes]
    return render(
        request,
        "scheduling/book_online_slots.html",
        {
            "doctor": doctor,
            "kind": kind,
            "days": dict(days),
            "modes": modes,
            "obstacles": obstacles,
            "shown_days": SHOWN_DAYS,
        },
    )


@login_required
def my_bookings(request):
    patient = _patient(request)
    now = timezone.now()
    bookings = Booking.objects.filter(patient=patient).select_related(
        "clinician__user", "appointment_type", "visit"
    )
    upcoming = [b for b in bookings.filter(ends_at__gte=now).order_by("starts_at") if b.is_active]
    past = list(
        bookings.filter(Q(ends_at__lt=now) | Q(status=Booking.Status.CANCELLED)).order_by(
            "-starts_at"
        )[:50]
    )
    for booking in upcoming:
        booking.cancellable = now <= services.cancel_deadline(booking)
    return render(request, "scheduling/my_bookings.html", {"upcoming": upcoming, "past": past})


@login_required
@require_POST
def my_booking_cancel(request, pk):
    patient = _patient(request)
    booking = booking_for_patient(patient, pk)
    try:
        services.booking_cancel(booking=booking, patient=patient, reason=_("Cancelled online"))
    except DomainError as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, _("Your appointment is cancelled."))
    return redirect("my_bookings")
