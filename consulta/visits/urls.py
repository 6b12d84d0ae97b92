from django.urls import path

from consulta.visits import views

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/visits/", views.dashboard_visits, name="dashboard_visits"),
    path("visits/", views.visit_list, name="visit_list"),
    path("visits/new/", views.visit_create, name="visit_create"),
    path("visits/<uuid:visit_id>/", views.visit_room, name="visit_room"),
    path(
        "visits/patients/<int:patient_id>/settings/",
        views.room_settings,
        name="visit_room_settings",
    ),
    path("my/", views.patient_home, name="patient_home"),
]
