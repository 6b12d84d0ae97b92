import logging
from dataclasses import dataclass

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context

from consulta.notifications.tasks import send_email_message

log = logging.getLogger("consulta.auth")


class AccountAdapter(DefaultAccountAdapter):
    """Accounts are created by the clinic, never by self sign-up; mail goes out through the
    background worker so that a slow mail server never holds a sign-in page."""

    def is_open_for_signup(self, request):
        return False

    def send_mail(self, template_prefix, email, context):
        request = allauth_context.request
        full_context = {
            "request": request,
            "email": email,
            "current_site": _Site(name="Consulta", domain=request.get_host()),
            **context,
        }
        message = self.render_mail(template_prefix, email, full_context)
        send_email_message.enqueue(
            subject=message.subject,
            body=message.body,
            to=list(message.to),
            html=_html_alternative(message),
        )

    def format_email_subject(self, subject):
        return f"[Consulta] {subject}"

    def authentication_failed(self, request, **credentials):
        log.warning("sign-in failed for %s from %s", credentials.get("email"), _ip(request))
        return super().authentication_failed(request, **credentials)


@dataclass
class _Site:
    """What allauth's mail templates call the site: our name, not the host name."""

    name: str
    domain: str


def _html_alternative(message) -> str:
    for content, mimetype in getattr(message, "alternatives", []):
        if mimetype == "text/html":
            return content
    return ""


def _ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")
