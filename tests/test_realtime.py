"""Publishing after commit (consulta/lib/realtime.py)."""

import asyncio

import pytest

from consulta.lib.realtime import publish_all_on_commit


class SlowLayer:
    """Each group_send waits a while, as a Redis round trip does; records start and end."""

    def __init__(self, fail_group=None):
        self.log: list[tuple[str, str, str]] = []
        self.fail_group = fail_group

    async def group_send(self, group, message):
        self.log.append(("start", group, message["n"]))
        await asyncio.sleep(0.01)
        if group == self.fail_group:
            raise ConnectionError("redis went away")
        self.log.append(("end", group, message["n"]))


@pytest.fixture
def layer(monkeypatch):
    def install(**kwargs):
        layer = SlowLayer(**kwargs)
        monkeypatch.setattr("consulta.lib.realtime.get_channel_layer", lambda: layer)
        return layer

    return install


def test_groups_are_sent_to_at_once_and_each_group_in_order(
    db, layer, django_capture_on_commit_callbacks
):
    layer = layer()
    with django_capture_on_commit_callbacks(execute=True):
        publish_all_on_commit([("a", {"n": "a1"}), ("b", {"n": "b1"}), ("a", {"n": "a2"})])
        assert layer.log == []  # nothing before the commit
    starts = [entry for entry in layer.log if entry[0] == "start"]
    # b1 does not wait behind a1; a2 waits for a1.
    assert layer.log.index(("start", "b", "b1")) < layer.log.index(("end", "a", "a1"))
    assert layer.log.index(("end", "a", "a1")) < layer.log.index(("start", "a", "a2"))
    assert len(starts) == 3


def test_a_failing_group_does_not_keep_the_others_from_their_events(
    db, layer, django_capture_on_commit_callbacks
):
    layer = layer(fail_group="a")
    with pytest.raises(ConnectionError), django_capture_on_commit_callbacks(execute=True):
        publish_all_on_commit([("a", {"n": "a1"}), ("b", {"n": "b1"})])
    assert ("end", "b", "b1") in layer.log


def test_nothing_is_sent_when_the_transaction_rolls_back(db, layer):
    from django.db import transaction

    layer = layer()
    with pytest.raises(RuntimeError), transaction.atomic():
        publish_all_on_commit([("a", {"n": "a1"})])
        raise RuntimeError("rolled back")
    assert layer.log == []
