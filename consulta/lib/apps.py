from django.apps import AppConfig
from django.db.backends.signals import connection_created


class LibConfig(AppConfig):
    """Registered so that Django finds the shared template tags; teaches SQLite connections
    the search's fold (consulta.lib.folding)."""

    name = "consulta.lib"
    label = "consulta_lib"

    def ready(self):
        from consulta.lib.folding import register_sqlite_fold

        connection_created.connect(register_sqlite_fold, dispatch_uid="consulta_fold")
