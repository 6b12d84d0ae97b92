import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consulta.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from consulta.calls.routing import websocket_urlpatterns as call_routes  # noqa: E402
from consulta.lib.websocket import LoggedOriginValidator  # noqa: E402
from consulta.visits.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": LoggedOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns + call_routes))
        ),
    }
)
