"""The staff calendar (day and week views, side by side for a group practice), booking,
and changing or cancelling a booking."""

from collections import defaultdict
from datetime import date, datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from consulta.lib.errors import DomainError
from consulta.patients.access import patients_visible_to
from consulta.patients.search import search_patients
from consulta.scheduling import services
from consulta.scheduling.access import (
    booking_for_staff,
    calendar_doctor_for_staff,
    calendar_doctors,
)
from consulta.scheduling.forms import (
    BookingForm,
    CancelForm,
    ChangeBookingForm,
    parse_slot_start,
    week_start,
)
from consulta.scheduling.free_times import render_free_times
from consulta.scheduling.ics import feed_ics
from consulta.scheduling.models import AppointmentType, Booking, BookingHold, DayType
from consulta.scheduling.slots import dates, free_slots

MAX_DAYS = 28


def _date(value: str | None, default: date) -> date:
    try:
        return date.fromisoformat(value) if value else default
    except ValueError:
        return default


def _days(value: str | None, default: int) -> int:
    return min(max(int(value), 1), MAX_DAYS) if value and value.isdigit() else default


def _types_for(clinic_id: int, doctor_ids: list[int]):
    return AppointmentType.objects.filter(clinic_id=clinic_id, is_active=True).filter(
        Q(clinician__isnull=True) | Q(clinician_id__in=doctor_ids)
    )


def _columns(staff, shown, start: date, days: int, type_id: int | None):
    """One column per (clinician, day): its bookings and its free slots, in time order. Free
    slots of several types starting together are one entry with a link per type."""
    tz = services.clinic_tz(staff.clinic)
    ids = [d.pk for d in shown]
    type_ids = [type_id] if type_id else None
    slots = free_slots(ids, start, days, tz, type_ids=type_ids, not_before=timezone.now())
    since = datetime.combine(start, datetime.min.time(), tzinfo=tz)
    until = since + timedelta(days=days)
    holds = (
        BookingHold.objects.filter(
            clinician_id__in=ids, active=True, starts_at__lt=until, ends_at__gt=since
        )
        .select_related(
            "booking__patient",
            "booking__appointment_type",
            "booking__visit",
            "booking__clinician__user",
        )
        .order_by("starts_at")
    )
    kinds = {k.pk: k for k in _types_for(staff.clinic_id, ids)}
    cells: dict[tuple[int, date], list[dict]] = defaultdict(list)
    for hold in holds:
        local = hold.starts_at.astimezone(tz)
        cells[(hold.clinician_id, local.date())].append(
            {
                "booking": hold.booking,
                "at": hold.starts_at,
                "participant": hold.clinician_id != hold.booking.clinician_id,
            }
        )
    free: dict[tuple[int, date, datetime], list] = defaultdict(list)
    for slot in slots:
        local = slot.starts_at.astimezone(tz)
        if slot.appointment_type_id in kinds:
            free[(slot.clinician_id, local.date(), slot.starts_at)].append(
                (kinds[slot.appointment_type_id], slot)
            )
    for (clinician_id, day, at), offered in free.items():
        cells[(clinician_id, day)].append({"free": offered, "at": at})
    day_types = {
        (d.clinician_id, d.day): d.appointment_type_id
        for d in DayType.objects.filter(
            clinician_id__in=ids, day__gte=start, day__lt=start + timedelta(days=days)
        )
    }
    columns = []
    for doctor in shown:
        for day in dates(start, days):
            entries = sorted(cells[(doctor.pk, day)], key=lambda e: (e["at"], "free" in e))
            columns.append(
                {
                    "doctor": doctor,
                    "day": day,
                    "entries": entries,
                    "day_type": day_types.get((doctor.pk, day)),
                }
            )
    return columns


# The whole page, or the grid alone for the live refresh (same address): see patient_list.
@login_required
@vary_on_headers("X-Requested-With")
def calendar_view(request):
    staff = request.staff
    doctors = list(calendar_doctors(staff))
    today = timezone.localdate()
    group = request.GET.get("group") == "1" and len(doctors) > 1
    days = _days(request.GET.get("days"), 1 if group else 7)
    start = _date(request.GET.get("start"), today)
    if days == 7:
        start = week_start(start)
    doctor = None
    if doctors:
        wanted = request.GET.get("doctor", "")
        doctor = next((d for d in doctors if str(d.pk) == wanted), None)
        doctor = doctor or next((d for d in doctors if d.pk == staff.pk), doctors[0])
    shown = doctors if group else ([doctor] if doctor else [])
    type_id = request.GET.get("type", "")
    type_id = int(type_id) if type_id.isdigit() else None
    query = {"doctor": doctor.pk if doctor else "", "days": days, "group": "1" if group else ""}
    context = {
        "doctors": doctors,
        "doctor": doctor,
        "group": group,
        "days": days,
        "start": start,
        "today": today,
        "previous": start - timedelta(days=days),
        "next": start + timedelta(days=days),
        "columns": _columns(staff, shown, start, days, type_id) if shown else [],
        "types": _types_for(staff.clinic_id, [d.pk for d in doctors]),
        "type_id": type_id,
        "query": urlencode({k: v for k, v in query.items() if v != ""}),
        "type_query": f"&type={type_id}" if type_id else "",
        "tz": services.clinic_tz(staff.clinic),
    }
    template = "scheduling/_calendar_grid.html"
    if request.headers.get("X-Requested-With") != "fetch":
        template = "scheduling/calendar.html"
    return render(request, template, context)


@login_required
@vary_on_headers("X-Requested-With")
def free_times(request):
    """Find a free time: the free slots of one calendar, or of every calendar the person
    works with, over up to four weeks, by day and clinician, optionally of one type."""
    staff = request.staff
    doctors = list(calendar_doctors(staff))
    wanted = request.GET.get("doctor", "")
    shown = [d for d in doctors if str(d.pk) == wanted] or doctors
    today = timezone.localdate()
    start = max(_date(request.GET.get("start"), today), today)
    days = _days(request.GET.get("days"), 7)
    kinds = {k.pk: k for k in _types_for(staff.clinic_id, [d.pk for d in doctors])}
    type_id = request.GET.get("type", "")
    type_ids = [int(type_id)] if type_id.isdigit() and int(type_id) in kinds else None
    html = render_free_times(
        free_slots(
            [d.pk for d in shown],
            start,
            days,
            services.clinic_tz(staff.clinic),
            type_ids=type_ids,
            not_before=timezone.now(),
        ),
        {d.pk: d for d in shown},
        kinds,
        services.clinic_tz(staff.clinic),
    )
    if request.headers.get("X-Requested-With") == "fetch":
        return HttpResponse(html)
    context = {
        "doctors": doctors,
        "doctor_id": wanted,
        "types": kinds.values(),
        "type_id": type_ids[0] if type_ids else None,
        "start": start,
        "days": days,
        "results": html,
    }
    return render(request, "scheduling/free_times.html", context)


def _booking_form_context(request, staff, doctor, form, patient, query):
    found = []
    if query and patient is None:
        visible = patients_visible_to(staff).filter(archived_at__isnull=True)
        found = list(search_patients(visible, query).order_by("last_name", "first_name")[:10])
    return {
        "doctor": doctor,
        "form": form,
        "patient": patient,
        "query": query,
        "found": found,
        "tz": staff.clinic.time_zone,
        # Where "Add a new patient" comes back to, with the new patient chosen.
        "back_here": reverse("booking_new")
        + "?"
        + urlencode(
            {k: request.GET.get(k, "") for k in ("doctor", "start", "type")} | {"doctor": doctor.pk}
        ),
    }


@login_required
def booking_new(request):
    """Book a patient in a clinician's calendar: from a free slot (its start and type in the
    address), or at a typed date and time."""
    staff = request.staff
    data = request.POST if request.method == "POST" else request.GET
    doctor = calendar_doctor_for_staff(staff, data.get("doctor"))
    types = _types_for(staff.clinic_id, [doctor.pk])
    colleagues = calendar_doctors(staff).exclude(pk=doctor.pk)
    patient = None
    patient_id = data.get("patient", "")
    if patient_id.isdigit():
        patient = (
            patients_visible_to(staff).filter(pk=int(patient_id), archived_at__isnull=True).first()
        )
    if request.method == "POST":
        form = BookingForm(request.POST, types=types, colleagues=colleagues)
        if form.is_valid() and patient is not None:
            d = form.cleaned_data
            try:
                booking = services.booking_create(
                    by=staff,
                    clinician=doctor,
                    patient=patient,
                    kind=d["kind"],
                    starts_at=d["starts_at"],
                    contact_mode=d["contact_mode"] or None,
                    notes_for_patient=d["notes_for_patient"],
                    internal_notes=d["internal_notes"],
                    participants=d["participants"],
                    outside_hours=d["outside_hours"],
                    duration_minutes=d["duration_minutes"],
                )
            except services.SlotTaken as taken:
                messages.error(request, taken.message)
                return redirect(_calendar_url(doctor, d["starts_at"]))
            except DomainError as refusal:
                form.add_error(None, refusal.message)
            else:
                messages.success(
                    request,
                    _("%(patient)s is booked for %(type)s.")
                    % {"patient": patient.full_name, "type": booking.appointment_type.name},
                )
                return redirect(_calendar_url(doctor, booking.starts_at))
        elif patient is None:
            form.add_error(None, _("Choose the patient."))
    else:
        initial = {}
        start = parse_slot_start(data.get("start"))
        if start is not None:
            initial["starts_at"] = timezone.localtime(start)
        kind = types.filter(pk=data.get("type")).first() if data.get("type", "").isdigit() else None
        if kind is not None:
            initial["kind"] = kind
        form = BookingForm(initial=initial, types=types, colleagues=colleagues)
    context = _booking_form_context(
        request, staff, doctor, form, patient, data.get("q", "").strip()[:100]
    )
    return render(request, "scheduling/booking_new.html", context)


def _calendar_url(doctor, moment: datetime) -> str:
    day = timezone.localtime(moment).date()
    return reverse("calendar") + "?" + urlencode({"doctor": doctor.pk, "start": day.isoformat()})


@login_required
def booking_detail(request, pk):
    staff = request.staff
    booking = booking_for_staff(staff, pk)
    types = _types_for(staff.clinic_id, [booking.clinician_id])
    change = ChangeBookingForm(
        initial={
            "kind": booking.appointment_type,
            "contact_mode": booking.contact_mode,
            "starts_at": timezone.localtime(booking.starts_at),
        },
        types=types,
    )
    participants = [
        h.clinician
        for h in booking.holds.select_related("clinician__user")
        if h.clinician_id != booking.clinician_id
    ]
    return render(
        request,
        "scheduling/booking_detail.html",
        {
            "booking": booking,
            "change": change,
            "cancel": CancelForm(),
            "participants": participants,
            "started": booking.starts_at <= timezone.now(),
        },
    )


@login_required
@require_POST
def booking_action(request, pk):
    staff = request.staff
    booking = booking_for_staff(staff, pk, action="booking.open_for_change")
    action = request.POST.get("action")
    try:
        if action == "cancel":
            form = CancelForm(request.POST)
            form.is_valid()
            services.booking_cancel(
                booking=booking, by=staff, reason=form.cleaned_data.get("reason", "")
            )
            messages.success(request, _("The booking is cancelled."))
            return redirect(_calendar_url(booking.clinician, booking.starts_at))
        if action == "change":
            form = ChangeBookingForm(
                request.POST, types=_types_for(staff.clinic_id, [booking.clinician_id])
            )
            if not form.is_valid():
                raise DomainError(_("Check the date, the time and the type."))
            d = form.cleaned_data
            starts_at = d["starts_at"]
            starts_at = (
                starts_at if timezone.is_aware(starts_at) else timezone.make_aware(starts_at)
            )
            services.booking_change(
                by=staff,
                booking=booking,
                starts_at=starts_at if starts_at != booking.starts_at else None,
                kind=d["kind"],
                contact_mode=d["contact_mode"],
                outside_hours=d["outside_hours"],
            )
            messages.success(request, _("The booking is changed."))
        elif action in (Booking.Status.DONE, Booking.Status.NO_SHOW):
            services.booking_set_status(by=staff, booking=booking, status=action)
            messages.success(request, _("The booking is marked."))
        else:
            raise Http404
    except DomainError as refusal:
        messages.error(request, refusal.message)
    return redirect("booking_detail", booking.pk)


@login_required
@require_POST
def day_type(request):
    """Set the appointment type of every free slot of one day (or go back to the template)."""
    staff = request.staff
    doctor = calendar_doctor_for_staff(staff, request.POST.get("doctor"))
    day = _date(request.POST.get("day"), None)
    if day is None:
        raise Http404
    kind_id = request.POST.get("type", "")
    kind = (
        _types_for(staff.clinic_id, [doctor.pk]).filter(pk=kind_id).first()
        if kind_id.isdigit()
        else None
    )
    try:
        services.day_type_set(by=staff, clinician=doctor, day=day, kind=kind)
    except DomainError as refusal:
        messages.error(request, refusal.message)
    else:
        if kind is None:
            messages.success(request, _("The day follows the week template again."))
        else:
            messages.success(
                request,
                _("Every free slot of %(day)s is now %(type)s.")
                % {"day": date_format(day, "DATE_FORMAT"), "type": kind.name},
            )
    return redirect(
        reverse("calendar") + "?" + urlencode({"doctor": doctor.pk, "start": day.isoformat()})
    )


def calendar_feed(request, token):
    """A clinician's private iCal feed, for the calendar on their phone. The address is the
    secret (only its hash is stored); creating a new one revokes the old."""
    calendar = services.calendar_for_feed(token)
    if calendar is None:
        raise Http404
    now = timezone.now()
    bookings = (
        Booking.objects.filter(
            holds__clinician=calendar.clinician,
            holds__active=True,
            starts_at__gte=now - timedelta(days=30),
            starts_at__lte=now + timedelta(days=180),
        )
        .select_related("patient", "appointment_type", "clinician__user")
        .distinct()
    )
    response = HttpResponse(feed_ics(calendar.clinician, bookings), content_type="text/calendar")
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
def appointment_type_css(request):
    """Each appointment type's colour as a class (`.type-<id>`): the pages' CSP allows no
    inline styles. Colours are validated as #rrggbb when saved."""
    if request.clinic is None:
        raise Http404
    rules = [
        f".type-{pk} {{ --type-colour: {colour}; }}"
        for pk, colour in AppointmentType.objects.filter(clinic=request.clinic).values_list(
            "pk", "colour"
        )
        if services.COLOUR.fullmatch(colour)
    ]
    response = HttpResponse("\n".join(rules), content_type="text/css")
    response["Cache-Control"] = "private, max-age=60"
    return response
