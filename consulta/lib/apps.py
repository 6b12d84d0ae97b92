from django.apps import AppConfig


class LibConfig(AppConfig):
    """Registered so that Django finds the shared template tags."""

    name = "consulta.lib"
    label = "consulta_lib"
