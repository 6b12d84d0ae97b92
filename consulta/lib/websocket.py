import logging

from channels.security.websocket import OriginValidator
from django.conf import settings

log = logging.getLogger("consulta.signalling")


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
