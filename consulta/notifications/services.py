from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation

from consulta.notifications.tasks import send_email_message


def email_render(*, template: str, context: dict, language: str) -> tuple[str, str]:
    """`<template>_subject.txt` and `<template>_message.txt` in the recipient's language."""
    with translation.override(language):
        subject = " ".join(render_to_string(f"{template}_subject.txt", context).split())
        body = render_to_string(f"{template}_message.txt", context).strip()
    return subject, body


def email_send_templated(
    *, to: str, template: str, context: dict, language: str, ics: str = ""
) -> None:
    """Render the message in the recipient's language and hand it to the worker (with a
    calendar file, when given)."""
    subject, body = email_render(template=template, context=context, language=language)
    send_email_message.enqueue(subject=subject, body=body, to=[to], ics=ics)


def email_send_on_commit(
    *, to: str, template: str, context: dict, language: str, ics: str = ""
) -> None:
    """Render now (a broken template fails the caller's transaction: nothing is saved and
    nothing is half-announced), hand the message to the worker once the transaction has
    committed. A failure to enqueue then is logged, never reported as a failure of what
    was committed."""
    subject, body = email_render(template=template, context=context, language=language)
    transaction.on_commit(
        lambda: send_email_message.enqueue(subject=subject, body=body, to=[to], ics=ics),
        robust=True,
    )
