import hashlib
import logging
import secrets
from datetime import timedelta

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from consulta.accounts.models import Clinic, LoginLink, StaffMember, User
from consulta.audit.services import audit_record
from consulta.lib.errors import DomainError

log = logging.getLogger(__name__)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def login_link_create(*, user: User, minutes: int | None = None) -> str:
    """Create a single-use sign-in link and return its raw token (shown once, never stored)."""
    token = secrets.token_urlsafe(32)
    LoginLink.objects.create(
        user=user,
        token_hash=hash_token(token),
        expires_at=timezone.now() + timedelta(minutes=minutes or settings.LOGIN_LINK_MINUTES),
    )
    return token


def login_link_use(*, token: str) -> User:
    """Spend a sign-in link. Raises DomainError when it is unknown, used or expired."""
    with transaction.atomic():
        link = (
            LoginLink.objects.select_for_update()
            .select_related("user")
            .filter(token_hash=hash_token(token))
            .first()
        )
        if link is None:
            raise DomainError(_("This sign-in link is not valid."), code="unknown")
        if link.used_at is not None:
            raise DomainError(_("This sign-in link has already been used."), code="used")
        if link.expires_at <= timezone.now():
            raise DomainError(_("This sign-in link has expired."), code="expired")
        if not link.user.is_active:
            raise DomainError(_("This account is disabled."), code="inactive")
        if Authenticator.objects.filter(user=link.user).exists():
            # A link must not step around a second factor.
            raise DomainError(
                _("This account uses two-factor authentication: sign in with your password."),
                code="mfa_required",
            )
        link.used_at = timezone.now()
        link.save(update_fields=["used_at"])
    return link.user


def clinic_update(*, by: StaffMember, clinic: Clinic, **changes) -> Clinic:
    """A clinic administrator changes the clinic's own settings."""
    if by.role != StaffMember.Role.CLINIC_ADMIN or by.clinic_id != clinic.pk:
        raise DomainError(
            _("Only the clinic's administrator can change its settings."), code="forbidden"
        )
    allowed = {
        "name",
        "time_zone",
        "default_language",
        "require_mfa",
        "join_minutes_before",
        "join_minutes_after",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"not clinic settings: {sorted(unknown)}")
    for field, value in changes.items():
        setattr(clinic, field, value)
    clinic.full_clean()
    clinic.save(update_fields=sorted(changes))
    audit_record(actor=by.user, action="clinic.update", target=clinic, fields=sorted(changes))
    log.info("clinic %s settings changed by %s: %s", clinic.pk, by.user_id, sorted(changes))
    return clinic


def user_set_language(*, user: User, language: str) -> None:
    """The language a person picked: kept on their account, so that what reaches them away
    from this browser (emails, text messages, another device) speaks it too."""
    if user.language != language:
        user.language = language
        user.save(update_fields=["language"])
