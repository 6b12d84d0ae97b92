"""The waiting room's connection test: the browser's offer in, the server peer's answer out.

An async view, so that the peer (consulta/visits/nettest.py) lives on the server's running
event loop after the response has gone."""

import json
import logging

from asgiref.sync import sync_to_async
from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from consulta.lib.errors import DomainError
from consulta.visits.access import holds_guest_visit, visit_for_participant
from consulta.visits.ice import ice_servers
from consulta.visits.nettest import nettest_answer

MAX_SDP_CHARS = 60_000
log = logging.getLogger("consulta.nettest")


def _participant_ice_servers(user, visit_id, session) -> list[dict] | None:
    """The ICE servers of the visit's page, for a participant only (404 for anyone else);
    None for someone who should sign in first."""
    if not user.is_authenticated and not holds_guest_visit(session, visit_id):
        return None
    visit, _role = visit_for_participant(user, visit_id, session=session)
    return ice_servers(user, visit)


def _offer_sdp(body: bytes) -> str | None:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    sdp = payload.get("sdp") if isinstance(payload, dict) else None
    if not isinstance(sdp, str) or not sdp.startswith("v=0") or len(sdp) > MAX_SDP_CHARS:
        return None
    return sdp


@require_POST
async def connection_test(request, visit_id):
    user = await request.auser()
    # Signed in, or the visit's guest (a browser session that redeemed its link).
    servers = await sync_to_async(_participant_ice_servers)(user, visit_id, request.session)
    if servers is None:
        return redirect_to_login(request.get_full_path())
    sdp = _offer_sdp(request.body)
    if sdp is None:
        log.info("connection test of user %s: malformed offer", user.pk)
        message = _("The browser sent a connection offer the server cannot read.")
        return JsonResponse({"error": message, "code": "invalid"}, status=400)
    try:
        answer = await nettest_answer(
            user_id=user.pk or f"guest-{visit_id}", offer_sdp=sdp, ice_servers=servers
        )
    except DomainError as refusal:
        status = 503 if refusal.code == "busy" else 400
        return JsonResponse({"error": refusal.message, "code": refusal.code}, status=status)
    return JsonResponse({"sdp": answer})
