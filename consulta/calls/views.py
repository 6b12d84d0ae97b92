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

from consulta.calls import presence, services
from consulta.calls.access import call_for_participant, colleague_for_staff, colleagues_of
from consulta.calls.forms import RingSettingsForm
from consulta.calls.ice import ice_servers
from consulta.calls.models import InternalCall
from consulta.calls.strings import call_page_strings, presence_strings, ring_settings_strings
from consulta.lib.errors import DomainError


def _require_staff(request):
    if request.staff is None:
        raise Http404
    return request.staff


def _wants_json(request) -> bool:
    return request.headers.get("Accept", "").startswith("application/json")


@login_required
def colleagues(request):
    """The clinic's staff with their presence, and a Call button for each."""
    staff = _require_staff(request)
    services.calls_sweep(clinic_id=staff.clinic_id)
    states = presence.states(staff.clinic_id)
    strings = presence_strings()
    reasons = {
        presence.OFFLINE: strings["reasonOffline"],
        presence.IN_CALL: strings["reasonInCall"],
    }
    rows = []
    for member in colleagues_of(staff):
        state = states.get(member.pk, presence.OFFLINE)
        reason = strings["reasonYou"] if member.pk == staff.pk else reasons.get(state, "")
        rows.append({"member": member, "state": state, "label": strings[state], "reason": reason})
    return render(
        request, "calls/colleagues.html", {"rows": rows, "strings": strings, "me": staff.pk}
    )


@login_required
@require_POST
def call_start(request):
    staff = _require_staff(request)
    callee = colleague_for_staff(staff, request.POST.get("callee"))
    try:
        call = services.call_start(by=staff, callee=callee)
    except DomainError as refusal:
        messages.error(request, refusal.message)
        return redirect("calls_colleagues")
    return redirect("call_room", call.pk)


@login_required
def call_room(request, call_id):
    call, role = call_for_participant(request.user, call_id)
    if call.status == InternalCall.Status.RINGING and services.ring_seconds_left(call) == 0:
        call = services.call_expire(call_id=call.pk)  # nobody answered: say so
    other = call.callee if role == "caller" else call.caller
    config = {
        "callId": str(call.pk),
        "role": role,
        "status": call.status,
        "otherName": str(other),
        # When this page was made: of two call pages of one person, the newer one stays
        # (consumers.CallConsumer.peer_takeover), also when the older one reconnects later.
        "wsPath": f"/ws/calls/{call.pk}/?opened={timezone.now().timestamp():.6f}",
        "iceServers": ice_servers(request.user),
        "iceTransportPolicy": settings.ICE_TRANSPORT_POLICY,
        "reconnectGraceSeconds": settings.VISIT_RECONNECT_GRACE_SECONDS,
        "heartbeatSeconds": presence.HEARTBEAT_SECONDS,
        "keepalivePath": reverse("keepalive"),
        "csrfToken": get_token(request),
        "serverTime": timezone.now().isoformat(),
        **services.call_state(call),
    }
    return render(
        request,
        "calls/room.html",
        {
            "call": call,
            "role": role,
            "other": other,
            "config": config,
            "strings": call_page_strings(),
        },
    )


@login_required
@require_POST
def call_accept(request, call_id):
    call, role = call_for_participant(request.user, call_id)
    if role != "callee":
        raise Http404
    try:
        services.call_accept(call_id=call.pk, user=request.user)
    except DomainError as refusal:
        if _wants_json(request):
            return JsonResponse({"code": refusal.code, "message": str(refusal.message)}, status=409)
        messages.error(request, refusal.message)
        return redirect("calls_colleagues")
    url = reverse("call_room", args=[call.pk])
    if _wants_json(request):
        return JsonResponse({"url": url})
    return redirect(url)


@login_required
@require_POST
def call_decline(request, call_id):
    call, role = call_for_participant(request.user, call_id)
    if role != "callee":
        raise Http404
    services.call_decline(call_id=call.pk, user=request.user)
    if _wants_json(request):
        return JsonResponse({"ok": True})
    return redirect("calls_colleagues")


@login_required
def ring_settings(request):
    """Anyone signed in chooses how incoming calls ring for them."""
    current = services.ring_settings_of(request.user)
    form = RingSettingsForm(
        request.POST or None, initial={"tone": current.tone, "volume": current.volume}
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.ring_settings_save(user=request.user, **form.cleaned_data)
        except DomainError as refusal:
            form.add_error(None, refusal.message)
        else:
            messages.success(request, _("Your ringtone settings are saved."))
            return redirect("ring_settings")
    volume = form["volume"].value()
    return render(
        request,
        "calls/ring_settings.html",
        {"form": form, "volume": volume, "strings": ring_settings_strings()},
        status=400 if form.errors else 200,
    )
