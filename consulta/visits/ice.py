"""The ICE servers a participant's browser gets for one visit: STUN, and TURN with an
ephemeral credential in coturn's `use-auth-secret` scheme (username `expiry:user id`,
password base64(HMAC-SHA1(secret, username))). The secret never leaves the server; a
credential works until the visit's planned end plus a margin, and only the visit page of a
participant hands one out."""

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

# A visit without a booking is planned for an hour.
DEFAULT_VISIT_LENGTH = timedelta(hours=1)


def turn_credential(user_id: int | str, expires: datetime) -> tuple[str, str]:
    username = f"{int(expires.timestamp())}:{user_id}"
    digest = hmac.new(settings.TURN_SECRET.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def visit_ends(visit) -> datetime:
    booking = getattr(visit, "booking", None)
    if booking is not None:
        return booking.ends_at
    return visit.scheduled_at + DEFAULT_VISIT_LENGTH


def ice_servers(user, visit, now: datetime | None = None) -> list[dict]:
    servers: list[dict] = [{"urls": url} for url in settings.ICE_SERVERS_STUN]
    if settings.TURN_URLS:
        now = now or timezone.now()
        expires = max(now, visit_ends(visit)) + timedelta(minutes=settings.TURN_MARGIN_MINUTES)
        # A guest has no account: the credential names the visit instead.
        username, credential = turn_credential(user.pk or f"guest-{visit.pk}", expires)
        servers.append({"urls": settings.TURN_URLS, "username": username, "credential": credential})
    return servers
