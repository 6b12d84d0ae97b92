import logging

from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from consulta.accounts import services
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


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")
