"""Text messages through a pluggable backend (SMS_BACKEND). The defaults only record what
would be sent: to the log, or to a file. Real providers plug in with the same interface."""

import json
import logging
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

log = logging.getLogger("consulta.sms")


class LogBackend:
    def send(self, *, to: str, body: str) -> None:
        log.info("SMS to %s: %s", to, body)


class FileBackend:
    """One JSON line per message in SMS_FILE_PATH: for demos and tests."""

    def send(self, *, to: str, body: str) -> None:
        path = Path(settings.SMS_FILE_PATH)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"at": timezone.now().isoformat(), "to": to, "body": body}) + "\n")


def get_backend():
    return import_string(settings.SMS_BACKEND)()
