from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.db.models import Q, Value
from django.db.models.lookups import Contains
from django.http import Http404, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from consulta.calls.models import RingSettings
from consulta.calls.services import ring_settings_of
from consulta.lib.errors import DomainError
from consulta.lib.folding import Folded
from consulta.patients.access import patient_for_staff
from consulta.patients.models import Patient
from consulta.patients.search import search_patients
from consulta.visits import services
from consulta.visits.access import (
    holds_guest_visit,
    is_guest,
    visit_for_participant,
    visits_for_patient,
    visits_for_staff,
)
from consulta.visits.forms import RoomSettingsForm, VisitCreateForm, patient_choices
from consulta.visits.ice import ice_servers
from consulta.visits.models import Visit
from consulta.visits.strings import nettest_strings, visit_page_strings


def _require_staff(request):
    if request.staff is None:
        raise Http404
    return request.staff


def _dashboard_visits(staff):
    start_of_today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    visits = visits_for_staff(staff).filter(scheduled_at__gte=start_of_today)[:100]
    upcoming, ended = [], []
    for visit in visits:
        (upcoming if visit.is_upcoming else ended).append(visit)
    return {
        "waiting": [v for v in upcoming if v.status == Visit.Status.WAITING],
        "upcoming": upcoming,
        "ended_today": ended,
    }


def _start_form(request, staff, form=None) -> dict:
    """The "start a video visit" form of a doctor: the patient is found by a search (its
    words in `patient_q`), then chosen among the few it finds."""
    if not staff.is_doctor:
        return {"form": None}
    if form is None:
        form = VisitCreateForm(staff=staff)
    # After a refusal the chosen patient stays chosen.
    chosen = getattr(form, "cleaned_data", {}).get("patient")
    query = request.GET.get("patient_q", "").strip()[:100]
    return {
        "form": form,
        "patient_query": query,
        "patient_choices": patient_choices(staff, query, chosen),
        "chosen_patient": chosen,
    }


@login_required
def dashboard(request):
    staff = _require_staff(request)
    return render(
        request,
        "visits/dashboard.html",
        {**_start_form(request, staff), **_dashboard_visits(staff)},
    )


@login_required
def visit_patient_choices(request):
    """The start form's search results, as the doctor types."""
    staff = _require_staff(request)
    if not staff.is_doctor:
        raise Http404
    return render(request, "visits/_patient_choices.html", _start_form(request, staff))


@login_required
def dashboard_visits(request):
    staff = _require_staff(request)
    return render(request, "visits/_dashboard_visits.html", _dashboard_visits(staff))


@login_required
@require_POST
def visit_create(request):
    staff = _require_staff(request)
    form = VisitCreateForm(request.POST, staff=staff)
    if form.is_valid():
        patient = patient_for_staff(staff, form.cleaned_data["patient"].pk, action="visit.create")
        try:
            visit = services.visit_create(
                by=staff, patient=patient, scheduled_at=form.cleaned_data["scheduled_at"]
            )
        except DomainError as refusal:
            form.add_error(None, refusal.message)
        else:
            messages.success(
                request, _("Video visit with %(name)s created.") % {"name": patient.full_name}
            )
            if form.cleaned_data["when"] == VisitCreateForm.WHEN_NOW:
                return redirect("visit_room", visit.pk)
            return redirect("dashboard")
    context = {**_start_form(request, staff, form), **_dashboard_visits(staff)}
    return render(request, "visits/dashboard.html", context, status=400)


VISIT_LIST_SIZE = 50


@login_required
def visit_list(request):
    """Video visits: upcoming and past, searchable by patient; Start on the waiting ones."""
    staff = _require_staff(request)
    query = request.GET.get("q", "").strip()[:100]
    visits = visits_for_staff(staff)
    if query:
        visits = visits.filter(
            Q(patient__in=search_patients(Patient.objects.filter(clinic=staff.clinic_id), query))
            | Q(Contains(Folded("guest_name"), Folded(Value(query))))
        )
    upcoming = list(visits.filter(Visit.upcoming_q()).order_by("scheduled_at")[:VISIT_LIST_SIZE])
    past = list(visits.exclude(Visit.upcoming_q()).order_by("-scheduled_at")[:VISIT_LIST_SIZE])
    lists = {"upcoming": upcoming, "past": past, "query": query}
    if request.GET.get("part") == "lists":  # the page keeping itself up to date
        return render(request, "visits/_visit_list_tables.html", lists)
    return render(request, "visits/visit_list.html", {**lists, **_start_form(request, staff)})


def visit_room(request, visit_id):
    # Signed in, or the guest of this visit (whose browser redeemed its link).
    if not request.user.is_authenticated and not holds_guest_visit(request.session, visit_id):
        return redirect_to_login(request.get_full_path())
    visit, role = visit_for_participant(request.user, visit_id, session=request.session)
    guest = is_guest(visit, role, request.user)
    if request.clinic is None:  # a guest: the times in the clinic's time zone
        timezone.activate(ZoneInfo(visit.clinic.time_zone))
    config = {
        "visitId": str(visit.pk),
        "role": role,
        "status": visit.status,
        "wsPath": f"/ws/visits/{visit.pk}/",
        "iceServers": ice_servers(request.user, visit),
        "iceTransportPolicy": settings.ICE_TRANSPORT_POLICY,
        "reconnectGraceSeconds": settings.VISIT_RECONNECT_GRACE_SECONDS,
        # A guest has no sign-in session to keep alive.
        "keepalivePath": reverse("keepalive") if request.user.is_authenticated else "",
        "connectionTestPath": reverse("visit_connection_test", args=[visit.pk]),
        "csrfToken": get_token(request),
    }
    room = services.room_settings_of(visit.patient)
    # Doctors always see both; the patient as the doctor set for them.
    config["selfView"] = role != "patient" or room.shows_self_view
    config["showElapsed"] = role != "patient" or room.shows_elapsed_time
    config["serverTime"] = timezone.now().isoformat()
    config["timeZone"] = visit.clinic.time_zone  # times shown as the clinic's, as elsewhere
    # The person's ringtone: the patient hears it when let in, the doctor when the patient
    # says they are ready. A guest has no account, so no settings: the defaults.
    ring = ring_settings_of(request.user) if request.user.is_authenticated else RingSettings()
    config["ring"] = {"tone": ring.tone, "volume": ring.volume}
    join_notice = ""
    if role == "patient" and visit.status == Visit.Status.SCHEDULED:
        refusal = services.join_refusal(visit)
        if refusal is not None:
            join_notice = refusal.message
            opens, _closes = services.join_window(visit)
            # Seconds from now, on the server's clock: the page's own clock may be wrong.
            config["joinOpensIn"] = max(0, int((opens - timezone.now()).total_seconds()))
            config["joinClosed"] = refusal.code == "too_late"
    return render(
        request,
        "visits/room.html",
        {
            "visit": visit,
            "role": role,
            "config": config,
            "strings": visit_page_strings(),
            "nettest_strings": nettest_strings(),
            "join_notice": join_notice,
            "guest": guest,
            "guest_link": (
                getattr(visit, "guest_link", None)
                if role == "doctor" and visit.is_guest_visit
                else None
            ),
            "guest_link_pattern": settings.PUBLIC_URL + reverse("guest_link", args=["TOKEN"]),
            "guest_link_hours": settings.GUEST_LINK_HOURS,
            **(_room_details(visit) if role != "patient" and not visit.is_guest_visit else {}),
            # The visit's doctor sets the patient's room here too, as on the record.
            "room_form": (
                RoomSettingsForm(instance=services.room_settings_of(visit.patient))
                if role == "doctor" and visit.patient_id
                else None
            ),
        },
    )


def _room_details(visit: Visit) -> dict:
    """For the doctors in the room: the link the patient uses, and the visit's booking."""
    from consulta.scheduling.models import Booking

    return {
        "patient_link": settings.PUBLIC_URL + reverse("visit_room", args=[visit.pk]),
        "booking": Booking.objects.filter(visit=visit).select_related("appointment_type").first(),
    }


@login_required
@require_POST
def room_settings(request, patient_id):
    """A doctor saves one patient's video visit settings: from the patient's record (a form,
    back to the record), or from the visit's room (the page's script, which must not leave a
    call: a JSON answer)."""
    staff = _require_staff(request)
    patient = patient_for_staff(staff, patient_id, action="patient.open_for_change")
    form = RoomSettingsForm(request.POST, instance=services.room_settings_of(patient))
    refusal = None
    if form.is_valid():
        try:
            services.room_settings_save(
                by=staff,
                patient=patient,
                **{f: form.cleaned_data[f] for f in services.ROOM_SETTING_FIELDS},
            )
        except DomainError as error:
            refusal = error.message
    else:
        refusal = _("Check the video visit settings.")
    if request.headers.get("X-Requested-With") == "fetch":
        if refusal is not None:
            return JsonResponse({"message": str(refusal)}, status=400)
        return JsonResponse({"message": _("The video visit settings are saved.")})
    if refusal is not None:
        messages.error(request, refusal)
    else:
        messages.success(request, _("The video visit settings are saved."))
    return redirect(reverse("patient_detail", args=[patient.pk]) + "#room-settings")


@login_required
def patient_home(request):
    if request.patient is None:
        raise Http404
    upcoming, past = [], []
    for visit in visits_for_patient(request.patient):
        (upcoming if visit.is_upcoming else past).append(visit)
    return render(
        request,
        "visits/patient_home.html",
        {"open_visits": upcoming, "past_visits": past[::-1][:20]},
    )


@login_required
@require_POST
def keepalive(request):
    # The idle-timeout middleware has already recorded the activity.
    return JsonResponse({"ok": True})
