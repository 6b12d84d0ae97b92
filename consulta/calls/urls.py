from django.urls import path

from consulta.calls import views

urlpatterns = [
    path("calls/", views.colleagues, name="calls_colleagues"),
    path("calls/start/", views.call_start, name="call_start"),
    path("calls/ringtone/", views.ring_settings, name="ring_settings"),
    path("calls/<uuid:call_id>/", views.call_room, name="call_room"),
    path("calls/<uuid:call_id>/accept/", views.call_accept, name="call_accept"),
    path("calls/<uuid:call_id>/decline/", views.call_decline, name="call_decline"),
]
