import time
import zoneinfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from consulta.accounts.models import StaffMember

_SESSION_KEY = "consulta_last_activity"


def _idle_limit_seconds(request) -> int:
    is_staff = request.staff is not None or request.user.is_staff
    return (settings.STAFF_IDLE_MINUTES if is_staff else settings.PATIENT_IDLE_MINUTES) * 60


class IdleTimeoutMiddleware:
    """Sign out a session left idle: 15 minutes for staff by default, longer for patients.
    Runs after ClinicContextMiddleware, which has already found request.staff."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            now = time.time()
            last = request.session.get(_SESSION_KEY)
            if last is not None and now - last > _idle_limit_seconds(request):
                minutes = _idle_limit_seconds(request) // 60
                logout(request)
                messages.info(
                    request,
                    ngettext(
                        "You were signed out after %(minutes)d minute without activity.",
                        "You were signed out after %(minutes)d minutes without activity.",
                        minutes,
                    )
                    % {"minutes": minutes},
                )
                return redirect(f"{reverse('account_login')}?next={request.path}")
            # Saving the session costs a database write: once a minute is precise enough.
            if last is None or now - last >= 60:
                request.session[_SESSION_KEY] = now
        return self.get_response(request)


class ClinicContextMiddleware:
    """Attach request.staff, request.patient and request.clinic; use the clinic's time zone
    and, when the person has not chosen one, the person's or the clinic's language."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.staff = None
        request.patient = None
        request.clinic = None
        user = request.user
        if user.is_authenticated:
            staff = StaffMember.objects.select_related("clinic").filter(user=user).first()
            if staff:
                request.staff = staff
                request.clinic = staff.clinic
            else:
                from consulta.patients.models import Patient

                patient = Patient.objects.select_related("clinic").filter(user=user).first()
                if patient:
                    request.patient = patient
                    request.clinic = patient.clinic
            explicit = settings.LANGUAGE_COOKIE_NAME in request.COOKIES
            preferred = user.language or (request.clinic.default_language if request.clinic else "")
            if preferred and not explicit:
                translation.activate(preferred)
                request.LANGUAGE_CODE = preferred
        if request.clinic:
            timezone.activate(zoneinfo.ZoneInfo(request.clinic.time_zone))
        else:
            timezone.deactivate()
        return self.get_response(request)


class RequireMFAMiddleware:
    """Staff of a clinic that requires two-factor authentication must set it up first."""

    _open_prefixes = ("/accounts/", "/static/", "/i18n/", "/healthz")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        staff = getattr(request, "staff", None)
        if (
            staff is not None
            and staff.clinic.require_mfa
            and not request.path.startswith(self._open_prefixes)
            and not _has_totp(request.user)
        ):
            messages.warning(
                request, _("Your clinic requires two-factor authentication. Please set it up.")
            )
            return redirect("mfa_activate_totp")
        return self.get_response(request)


def _has_totp(user) -> bool:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
