from django.urls import path

from consulta.visits import guest_views, nettest_views, views

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/visits/", views.dashboard_visits, name="dashboard_visits"),
    path("visits/", views.visit_list, name="visit_list"),
    path("visits/new/", views.visit_create, name="visit_create"),
    path("visits/new/patients/", views.visit_patient_choices, name="visit_patient_choices"),
    path("visits/new-with-guest/", guest_views.guest_visit_create, name="guest_visit_create"),
    path("visits/<uuid:visit_id>/", views.visit_room, name="visit_room"),
    path(
        "visits/<uuid:visit_id>/guest-link/",
        guest_views.guest_link_renew,
        name="guest_link_renew",
    ),
    path("g/<str:token>/", guest_views.guest_link, name="guest_link"),
    path(
        "visits/<uuid:visit_id>/connection-test/",
        nettest_views.connection_test,
        name="visit_connection_test",
    ),
    path(
        "visits/patients/<int:patient_id>/settings/",
        views.room_settings,
        name="visit_room_settings",
    ),
    path("my/", views.patient_home, name="patient_home"),
]
