import logging

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import check_for_language
from django.utils.translation import gettext as _
from django.views import i18n as i18n_views
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from consulta.accounts import services
from consulta.accounts.forms import ClinicSettingsForm
from consulta.accounts.models import Clinic, StaffMember
from consulta.lib.errors import DomainError

log = logging.getLogger("consulta.auth")


def home(request):
    if not request.user.is_authenticated:
        return redirect("account_login")
    if request.staff is not None:
        return redirect("dashboard")
    if request.patient is not None:
        return redirect("patient_home")
    if request.user.is_staff:
        return redirect("admin:index")
    return render(request, "accounts/no_role.html")


@never_cache
@require_http_methods(["GET", "POST"])
def login_link(request, token):
    """GET shows a button, POST signs in: mail scanners that open links don't spend them."""
    if request.method == "GET":
        return render(request, "accounts/login_link.html")
    try:
        user = services.login_link_use(token=token)
    except DomainError as refusal:
        log.warning(
            "sign-in link refused (%s) from %s", refusal.code, request.META.get("REMOTE_ADDR")
        )
        messages.error(request, refusal.message)
        return redirect("account_login")
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect("home")


@login_required
def clinic_settings(request):
    staff = request.staff
    if staff is None or staff.role != StaffMember.Role.CLINIC_ADMIN:
        raise Http404
    clinic = staff.clinic
    form = ClinicSettingsForm(request.POST or None, instance=Clinic.objects.get(pk=clinic.pk))
    if request.method == "POST" and form.is_valid():
        changes = {field: form.cleaned_data[field] for field in form.changed_data}
        if changes:
            services.clinic_update(by=staff, clinic=clinic, **changes)
        messages.success(request, _("The clinic's settings are saved."))
        return redirect("clinic_settings")
    return render(
        request, "accounts/clinic_settings.html", {"form": form}, status=400 if form.errors else 200
    )


@require_POST
def set_language(request):
    """Django's language switch (the language cookie, back to the page); a signed-in person's
    choice is kept on their account too."""
    response = i18n_views.set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language and check_for_language(language):
        services.user_set_language(user=request.user, language=language)
    return response


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")
