from django.urls import path

from consulta.calls.consumers import CallConsumer, StaffConsumer

websocket_urlpatterns = [
    path("ws/staff/", StaffConsumer.as_asgi()),
    path("ws/calls/<uuid:call_id>/", CallConsumer.as_asgi()),
]
