import json
import logging
from typing import Any

from channels.security.websocket import OriginValidator
from django.conf import settings
from django.utils import translation

from consulta.lib.errors import DomainError

log = logging.getLogger("consulta.signalling")


def socket_language(scope, user, clinic) -> str:
    """The language of a socket's messages, chosen as for the person's pages: the language
    they picked in this browser (the language cookie), else their own, else their clinic's."""
    chosen = (scope.get("cookies") or {}).get(settings.LANGUAGE_COOKIE_NAME, "")
    if chosen:
        try:
            return translation.get_supported_language_variant(chosen)
        except LookupError:
            pass
    return getattr(user, "language", "") or clinic.default_language


class LoggedOriginValidator(OriginValidator):
    """Channels' origin check against ALLOWED_HOSTS, which also logs what it refuses."""

    def __init__(self, application):
        super().__init__(application, settings.ALLOWED_HOSTS)

    def valid_origin(self, parsed_origin):
        valid = super().valid_origin(parsed_origin)
        if not valid:
            origin = parsed_origin.geturl() if parsed_origin is not None else "no Origin header"
            log.warning("WebSocket refused: foreign origin (%s)", origin)
        return valid


CLOSE_TOO_LARGE = 1009


class SignallingReceiver:
    """receive() for the call screens' sockets (VisitConsumer, CallConsumer), mixed in before
    AsyncWebsocketConsumer: each message is checked by the class's `parse`, then handled by
    its `_dispatch`; a refusal (DomainError) is answered with an `error` message in the
    person's language, and a message too large closes the socket. The consumer sets
    `language` and `role` when it connects, and names itself in the log with `log_name`."""

    language: str
    role: str | None
    log_name: str  # "visit 12"

    @staticmethod
    def parse(text: str | None, max_bytes: int) -> dict[str, Any]:
        raise NotImplementedError

    async def _dispatch(self, message: dict) -> None:
        raise NotImplementedError

    async def receive(self, text_data=None, bytes_data=None):
        with translation.override(self.language):
            try:
                message = self.parse(text_data, settings.SIGNALLING_MAX_MESSAGE_BYTES)
                await self._dispatch(message)
            except DomainError as refusal:
                log.warning(
                    "%s: %s message from user %s refused: %s",
                    self.log_name,
                    self.role,
                    self.scope["user"].pk,
                    refusal.code,
                )
                await self._send(
                    {
                        **refusal.extra,
                        "type": "error",
                        "code": refusal.code,
                        "message": str(refusal.message),
                    }
                )
                if refusal.code == "too_large":
                    await self.close(code=CLOSE_TOO_LARGE)

    async def _send(self, payload: dict) -> None:
        await self.send(text_data=json.dumps(payload))
