from django.contrib import admin
from django.urls import include, path

from consulta.accounts import views as account_views
from consulta.visits import views as visit_views

urlpatterns = [
    path("", account_views.home, name="home"),
    path("healthz", account_views.healthz, name="healthz"),
    path("login/link/<str:token>/", account_views.login_link, name="login_link"),
    path("clinic/settings/", account_views.clinic_settings, name="clinic_settings"),
    path("accounts/keepalive/", visit_views.keepalive, name="keepalive"),
    path("accounts/", include("allauth.urls")),
    path("i18n/setlang/", account_views.set_language, name="set_language"),
    path("admin/", admin.site.urls),
    path("", include("consulta.visits.urls")),
    path("", include("consulta.patients.urls")),
    path("", include("consulta.scheduling.urls")),
    path("", include("consulta.calls.urls")),
]
