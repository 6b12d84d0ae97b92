import logging

from django.core.mail import EmailMultiAlternatives
from django_tasks import task

log = logging.getLogger(__name__)


@task()
def send_email_message(
    *, subject: str, body: str, to: list[str], html: str = "", ics: str = ""
) -> int:
    """Send one email, with a calendar file when `ics` is given. Runs in the worker; a
    failure is retried by re-enqueueing, and logged."""
    message = EmailMultiAlternatives(subject=subject, body=body, to=to)
    if html:
        message.attach_alternative(html, "text/html")
    if ics:
        message.attach("appointment.ics", ics, "text/calendar; method=PUBLISH")
    sent = message.send()
    log.info("email %r sent to %d recipient(s)", subject, len(to))
    return sent


@task()
def send_sms_message(*, to: str, body: str) -> None:
    """Send one text message through the configured backend, in the worker."""
    from consulta.notifications.sms import get_backend

    get_backend().send(to=to, body=body)
