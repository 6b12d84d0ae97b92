import pytest
from django.utils import timezone

from consulta.calls.models import InternalCall, StaffConnection
from tests.services import clear_cache


class RecordingLayer:
    """Stands in for the channel layer: remembers every group_send."""

    def __init__(self):
        self.sent: list[tuple[str, dict]] = []

    async def group_send(self, group, message):
        self.sent.append((group, message))


@pytest.fixture(autouse=True)
def fresh_cache():
    """The sweep's "not again so soon" marks live in the cache: start every test without."""
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, dict]]:
    layer = RecordingLayer()
    monkeypatch.setattr("consulta.lib.realtime.get_channel_layer", lambda: layer)
    return layer.sent


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    """Run the on-commit callbacks of the block, as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


_sockets = iter(range(10**9))


def go_online(staff, *, seen=None, call=None) -> StaffConnection:
    """Give `staff` an open page (a socket seen at `seen`, now by default)."""
    seen = seen or timezone.now()
    return StaffConnection.objects.create(
        staff=staff,
        channel_name=f"test.socket.{next(_sockets)}",
        call=call,
        connected_at=seen,
        last_seen=seen,
    )


def ringing(caller, callee, **fields) -> InternalCall:
    return InternalCall.objects.create(
        clinic_id=caller.clinic_id, caller=caller, callee=callee, **fields
    )


def accepted(caller, callee, **fields) -> InternalCall:
    fields.setdefault("answered_at", timezone.now())
    return ringing(caller, callee, status=InternalCall.Status.ACCEPTED, **fields)
