"""Validation of the messages a browser sends on the visit socket (docs/signalling.md)."""

import json
from typing import Any

from django.utils.translation import gettext as _

from consulta.lib.errors import DomainError

MAX_SDP_CHARS = 60_000
MAX_CANDIDATE_CHARS = 2_000

MAX_PEER_CHARS = 64
_EVERYONE = frozenset({"doctor", "clinician", "patient"})
# type -> roles allowed to send it. Doctors offer and the patient answers; between two
# doctors the one whose `peer` sorts first offers and the other, whichever it is, answers
# (docs/signalling.md).
SENDERS: dict[str, frozenset[str]] = {
    "ready": frozenset({"patient"}),
    "admit": frozenset({"doctor"}),
    "end": frozenset({"doctor"}),
    "offer": frozenset({"doctor", "clinician"}),
    "answer": _EVERYONE,
    "ice": _EVERYONE,
    "media": _EVERYONE,
    "ping": _EVERYONE,
    "notice": frozenset({"doctor"}),
}
RELAYED = frozenset({"offer", "answer", "ice", "media"})


def parse_message(
    text: str | None, max_bytes: int, senders: dict[str, frozenset[str]] = SENDERS
) -> dict[str, Any]:
    """The message, checked and reduced to what it may hold; `senders` gives the types the
    socket accepts (the internal calls' socket has its own: consulta/calls/signalling.py)."""
    if text is None:
        raise DomainError(_("Only text messages are accepted."), code="binary")
    if len(text.encode()) > max_bytes:
        raise DomainError(_("The message is too large."), code="too_large")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise DomainError(_("The message is not valid JSON."), code="malformed") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise DomainError(_("The message has no type."), code="malformed")
    kind = message["type"]
    if kind not in senders:
        raise DomainError(_("Unknown message type."), code="unknown_type")
    cleaned = _CLEANERS.get(kind, _bare)(message)
    if kind in RELAYED:
        to = message.get("to")
        if to is not None:
            if not isinstance(to, str) or not 0 < len(to) <= MAX_PEER_CHARS:
                raise DomainError(_("The message names no valid participant."), code="malformed")
            cleaned["to"] = to
    return cleaned


def _notice(message):
    text = message.get("text")
    if not isinstance(text, str) or len(text) > 300:
        raise DomainError(_("Keep the message under 300 characters."), code="too_long")
    return {"type": "notice", "text": text}


def _bare(message):
    return {"type": message["type"]}


def _sdp(message):
    sdp = message.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0") or len(sdp) > MAX_SDP_CHARS:
        raise DomainError(_("The session description is not valid."), code="malformed")
    return {"type": message["type"], "sdp": sdp}


def _ice(message):
    candidate = message.get("candidate")
    if candidate is None:  # end of candidates
        return {"type": "ice", "candidate": None}
    if not isinstance(candidate, dict):
        raise DomainError(_("The ICE candidate is not valid."), code="malformed")
    text = candidate.get("candidate")
    mid = candidate.get("sdpMid")
    index = candidate.get("sdpMLineIndex")
    if (
        not isinstance(text, str)
        or len(text) > MAX_CANDIDATE_CHARS
        or not (mid is None or (isinstance(mid, str) and len(mid) <= 64))
        or not (index is None or (_is_int(index) and 0 <= index < 64))
    ):
        raise DomainError(_("The ICE candidate is not valid."), code="malformed")
    return {"type": "ice", "candidate": {"candidate": text, "sdpMid": mid, "sdpMLineIndex": index}}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # True is an int in Python


def _media(message):
    audio, video = message.get("audio"), message.get("video")
    if not isinstance(audio, bool) or not isinstance(video, bool):
        raise DomainError(_("The media state is not valid."), code="malformed")
    return {"type": "media", "audio": audio, "video": video}


_CLEANERS = {"offer": _sdp, "answer": _sdp, "ice": _ice, "media": _media, "notice": _notice}
