from django.urls import path

from consulta.visits.consumers import ClinicVisitsConsumer, VisitConsumer

websocket_urlpatterns = [
    path("ws/visits/<uuid:visit_id>/", VisitConsumer.as_asgi()),
    path("ws/clinic/visits/", ClinicVisitsConsumer.as_asgi()),
]
