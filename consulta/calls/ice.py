"""ICE servers for an internal call: STUN, and TURN with an ephemeral credential in coturn's
`use-auth-secret` scheme (consulta/visits/ice.py). A call has no planned end: the
credential is valid for a few hours from when the call page opens, which outlasts any call
between colleagues; only the call page of one of its two people hands one out."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from consulta.visits.ice import turn_credential

CREDENTIAL_LIFETIME = timedelta(hours=4)


def ice_servers(user, now: datetime | None = None) -> list[dict]:
    servers: list[dict] = [{"urls": url} for url in settings.ICE_SERVERS_STUN]
    if settings.TURN_URLS:
        expires = (now or timezone.now()) + CREDENTIAL_LIFETIME
        username, credential = turn_credential(user.pk, expires)
        servers.append({"urls": settings.TURN_URLS, "username": username, "credential": credential})
    return servers
