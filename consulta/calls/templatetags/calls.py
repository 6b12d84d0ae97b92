from django import template
from django.middleware.csrf import get_token

from consulta.calls import presence, services
from consulta.calls.strings import incoming_call_strings

register = template.Library()


@register.inclusion_tag("calls/_staff_socket.html", takes_context=True)
def staff_socket(context):
    """On every page of a signed-in staff member: the staff socket (presence, incoming
    calls) and the incoming-call dialog, with the person's ringtone and volume."""
    request = context.get("request")
    staff = getattr(request, "staff", None) if request is not None else None
    if staff is None:
        return {"enabled": False}
    ring = services.ring_settings_of(request.user)
    return {
        "enabled": True,
        "config": {
            "wsPath": "/ws/staff/",
            "me": staff.pk,
            "heartbeatSeconds": presence.HEARTBEAT_SECONDS,
            "ring": {"tone": ring.tone, "volume": ring.volume},
            "csrfToken": get_token(request),
            "strings": incoming_call_strings(),
        },
    }
