"""A first consultation without a patient record: the doctor opens a room for a guest and
sends them a single-use link; the guest, who has no account, joins from that link."""

import logging
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from consulta.lib.errors import DomainError
from consulta.visits import services
from consulta.visits.access import (
    GUEST_VISITS_SESSION_KEY,
    participant_role,
    visit_for_participant,
)

log = logging.getLogger("consulta.visits")

# The raw token reaches the doctor's room page in the URL's fragment, which browsers never
# send to a server: nothing stores it, and the page's script shows it once (guest-link.js).
GUEST_TOKEN_FRAGMENT = "guest-link"  # noqa: S105 - the fragment's name, not a secret
# A browser keeps the last few visits it joined as a guest; older ones drop out.
GUEST_VISITS_KEPT = 10


def _room_with_new_link(visit, token: str):
    return redirect(reverse("visit_room", args=[visit.pk]) + f"#{GUEST_TOKEN_FRAGMENT}={token}")


def _back(request) -> str:
    """Where the form was: the dashboard or the list of video visits, nowhere else."""
    pages = (reverse("dashboard"), reverse("visit_list"))
    back = request.POST.get("next", "")
    return back if back in pages else pages[0]


@login_required
@require_POST
def guest_visit_create(request):
    staff = request.staff
    if staff is None or not staff.is_doctor:
        raise Http404
    try:
        visit, token = services.visit_create_adhoc(
            by=staff, guest_name=request.POST.get("guest_name", "")
        )
    except DomainError as refusal:
        messages.error(request, refusal.message)
        return redirect(_back(request))
    return _room_with_new_link(visit, token)


@login_required
@require_POST
def guest_link_renew(request, visit_id):
    if request.staff is None:
        raise Http404
    visit, role = visit_for_participant(request.user, visit_id)
    if role != "doctor":
        raise Http404
    try:
        token = services.guest_link_renew(by=request.staff, visit=visit)
    except DomainError as refusal:
        messages.error(request, refusal.message)
        return redirect("visit_room", visit.pk)
    messages.success(
        request, _("Here is a new link for your guest. The previous link no longer works.")
    )
    return _room_with_new_link(visit, token)


@require_http_methods(["GET", "POST"])
def guest_link(request, token):
    """GET shows whom the visit is with and a button; POST spends the link. Mail and chat
    programs open links to preview them: a GET leaves the link as it was."""
    link = services.guest_link_find(token)
    user = request.user
    if link is not None and user.is_authenticated and participant_role(user, link.visit):
        # The doctor trying their guest's link: to the room, and the link stays unused.
        messages.info(
            request,
            _("This is your guest's link: send it to them. Opening it here did not use it."),
        )
        return redirect("visit_room", link.visit_id)
    if request.method == "GET":
        refusal = services.guest_link_refusal(link, request.session.session_key)
        return _guest_page(request, link, refusal)
    if request.session.session_key is None:
        request.session.save()  # the link is bound to this browser's session: it needs a key
    try:
        visit = services.guest_link_redeem(token=token, session_key=request.session.session_key)
    except DomainError as refusal:
        return _guest_page(request, link, refusal)
    joined = [v for v in request.session.get(GUEST_VISITS_SESSION_KEY, []) if v != str(visit.pk)]
    request.session[GUEST_VISITS_SESSION_KEY] = [*joined, str(visit.pk)][-GUEST_VISITS_KEPT:]
    return redirect("visit_room", visit.pk)


def _guest_page(request, link, refusal: DomainError | None):
    if link is not None:
        timezone.activate(ZoneInfo(link.visit.clinic.time_zone))
    status = 200 if refusal is None else 404 if refusal.code == "unknown" else 410
    return render(
        request,
        "visits/guest_link.html",
        {"visit": link.visit if link else None, "refusal": refusal},
        status=status,
    )
