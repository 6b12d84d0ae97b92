from django.template.loader import render_to_string
from django.utils import translation

from consulta.notifications.tasks import send_email_message


def email_send_templated(*, to: str, template: str, context: dict, language: str) -> None:
    """Render `<template>_subject.txt` and `<template>_message.txt` in the recipient's
    language and hand the message to the worker."""
    with translation.override(language):
        subject = " ".join(render_to_string(f"{template}_subject.txt", context).split())
        body = render_to_string(f"{template}_message.txt", context).strip()
    send_email_message.enqueue(subject=subject, body=body, to=[to])
