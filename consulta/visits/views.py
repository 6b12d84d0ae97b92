from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from consulta.lib.errors import DomainError
from consulta.patients.access import patient_for_staff
from consulta.patients.models import Patient
from consulta.patients.search import search_patients
from consulta.visits import services
from consulta.visits.access import visit_for_participant, visits_for_patient, visits_for_staff
from consulta.visits.forms import RoomSettingsForm, VisitCreateForm
from consulta.visits.ice import ice_servers
from consulta.visits.models import Visit
from consulta.visits.strings import visit_page_strings

MISSED_AFTER = timedelta(hours=2)


def _require_staff(request):
    if request.staff is None:
        raise Http404
    return request.staff


def _dashboard_visits(staff):
    start_of_today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    visits = visits_for_staff(staff).filter(scheduled_at__gte=start_of_today)[:100]
    open_visits = [v for v in visits if v.is_open]
    return {
        "waiting": [v for v in open_visits if v.status == Visit.Status.WAITING],
        "upcoming": open_visits,
        "ended_today": [v for v in visits if not v.is_open],
    }


@login_required
def dashboard(request):
    staff = _require_staff(request)
    form = VisitCreateForm(staff=staff) if staff.is_doctor else None
    return render(request, "visits/dashboard.html", {"form": form, **_dashboard_visits(staff)})


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
    context = {"form": form, **_dashboard_visits(staff)}
    return render(request, "visits/dashboard.html", context, status=400)


VISIT_LIST_SIZE = 50


@login_required
def visit_list(request):
    """Video visits: upcoming and past, searchable by patient; Start on the waiting ones."""
    staff = _require_staff(request)
    query = request.GET.get("q", "").strip()[:100]
    visits = visits_for_staff(staff)
    if query:
        visits = visits.filter(patient__in=search_patients(Patient.objects.all(), query))
    missed_before = timezone.now() - MISSED_AFTER
    upcoming = list(
        visits.filter(status__in=Visit.OPEN_STATUSES, scheduled_at__gte=missed_before).order_by(
            "scheduled_at"
        )[:VISIT_LIST_SIZE]
    )
    past = list(
        visits.exclude(status__in=Visit.OPEN_STATUSES, scheduled_at__gte=missed_before).order_by(
            "-scheduled_at"
        )[:VISIT_LIST_SIZE]
    )
    form = VisitCreateForm(staff=staff) if staff.is_doctor else None
    return render(
        request,
        "visits/visit_list.html",
        {"upcoming": upcoming, "past": past, "query": query, "form": form},
    )


@login_required
def visit_room(request, visit_id):
    visit, role = visit_for_participant(request.user, visit_id)
    config = {
        "visitId": str(visit.pk),
        "role": role,
        "status": visit.status,
        "wsPath": f"/ws/visits/{visit.pk}/",
        "iceServers": ice_servers(request.user, visit),
        "iceTransportPolicy": settings.ICE_TRANSPORT_POLICY,
        "reconnectGraceSeconds": settings.VISIT_RECONNECT_GRACE_SECONDS,
        "keepalivePath": reverse("keepalive"),
        "csrfToken": get_token(request),
    }
    room = services.room_settings_of(visit.patient)
    # The doctor always sees both; the patient as the doctor set for them.
    config["selfView"] = role == "doctor" or room.shows_self_view
    config["showElapsed"] = role == "doctor" or room.shows_elapsed_time
    config["serverTime"] = timezone.now().isoformat()
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
            "join_notice": join_notice,
        },
    )


@login_required
@require_POST
def room_settings(request, patient_id):
    """A doctor saves one patient's video visit settings, from the patient's record."""
    staff = _require_staff(request)
    patient = patient_for_staff(staff, patient_id, action="patient.open_for_change")
    form = RoomSettingsForm(request.POST, instance=services.room_settings_of(patient))
    if form.is_valid():
        try:
            services.room_settings_save(
                by=staff,
                patient=patient,
                **{f: form.cleaned_data[f] for f in services.ROOM_SETTING_FIELDS},
            )
        except DomainError as refusal:
            messages.error(request, refusal.message)
        else:
            messages.success(request, _("The video visit settings are saved."))
    else:
        messages.error(request, _("Check the video visit settings."))
    return redirect(reverse("patient_detail", args=[patient.pk]) + "#room-settings")


@login_required
def patient_home(request):
    if request.patient is None:
        raise Http404
    # An open visit whose time passed long ago was missed: it is history, not "upcoming".
    missed_before = timezone.now() - MISSED_AFTER
    upcoming, past = [], []
    for visit in visits_for_patient(request.patient):
        is_upcoming = visit.is_open and visit.scheduled_at >= missed_before
        (upcoming if is_upcoming else past).append(visit)
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
