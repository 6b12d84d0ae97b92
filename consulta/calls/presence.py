"""Presence of a clinic's staff: online, offline or in a call.

Design: every open staff page keeps a socket (`/ws/staff/`), and every call page a call
socket; each socket is a `StaffConnection` row with a heartbeat (`last_seen`, refreshed by
the page's ping every HEARTBEAT_SECONDS). A person is online while one of their rows was
seen within the last ONLINE_SECONDS. The rows live in the database, not in a process, so
several server processes (and the Redis channel layer between them) agree; and a process
that crashes cannot keep anyone online: its rows stop being refreshed, go stale within a
minute and are swept (services.calls_sweep, run on heartbeats and when a page looks).

"In a call" is read from the call and visit tables: an accepted internal call, or a video
visit in progress of which the person is the doctor. Being offline wins: nobody is shown
in a call without an open page. (A visit's call starting or ending reaches the pages
through the visits' own clinic doorbell: calls/consumers.py, StaffConsumer.)

A page that closes cleanly deletes its row at once; a socket that drops (network loss)
leaves its row to go stale, since the page usually reconnects within seconds and the person
should not flicker offline meanwhile. (Moving from one page to the next closes cleanly
and reconnects within a second: the Colleagues page waits a moment before it shows
"offline", so that navigation does not blink.)

Changes of connections and internal calls are published after commit to the clinic's
staff group as (staff id, state): no patient data. The state sent is read after commit, so
the last event always carries the last committed state.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from consulta.accounts.models import StaffMember
from consulta.calls.groups import clinic_staff_group
from consulta.calls.models import InternalCall, StaffConnection
from consulta.lib.realtime import publish_all_on_commit
from consulta.visits.services import ongoing_visits

ONLINE = "online"
OFFLINE = "offline"
IN_CALL = "in_call"

# Pages ping every HEARTBEAT_SECONDS; a connection unseen for ONLINE_SECONDS is gone.
HEARTBEAT_SECONDS = 25
ONLINE_SECONDS = 60


def fresh_since(now: datetime) -> datetime:
    return now - timedelta(seconds=ONLINE_SECONDS)


def is_online(staff_id: int, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    fresh = StaffConnection.objects.filter(staff_id=staff_id, last_seen__gte=fresh_since(now))
    return fresh.exists()


def states(clinic_id: int, staff_ids: Iterable[int] | None = None, now=None) -> dict[int, str]:
    """{staff id: state} for the clinic's staff (or the given ones): three queries."""
    now = now or timezone.now()
    staff = StaffMember.objects.filter(clinic_id=clinic_id)
    if staff_ids is not None:
        staff = staff.filter(pk__in=list(staff_ids))
    ids = list(staff.values_list("pk", flat=True))
    online = set(
        StaffConnection.objects.filter(staff_id__in=ids, last_seen__gte=fresh_since(now))
        .values_list("staff_id", flat=True)
        .distinct()
    )
    busy = in_call_ids(clinic_id, now)
    return {pk: (OFFLINE if pk not in online else IN_CALL if pk in busy else ONLINE) for pk in ids}


def in_call_ids(clinic_id: int, now: datetime) -> set[int]:
    busy: set[int] = set()
    for caller_id, callee_id in InternalCall.objects.filter(
        clinic_id=clinic_id, status=InternalCall.Status.ACCEPTED
    ).values_list("caller_id", "callee_id"):
        busy.update((caller_id, callee_id))
    busy.update(ongoing_visits(now).filter(clinic_id=clinic_id).values_list("doctor_id", flat=True))
    return busy


def state_of(staff: StaffMember, now=None) -> str:
    return states(staff.clinic_id, [staff.pk], now).get(staff.pk, OFFLINE)


def presence_changed(clinic_id: int, staff_ids: Iterable[int]) -> None:
    """After commit, tell the clinic's staff the current state of these people."""
    ids = sorted(set(staff_ids))
    if not ids:
        return

    def send():
        group = clinic_staff_group(clinic_id)
        publish_all_on_commit(
            (group, {"type": "presence.changed", "staff": pk, "state": state})
            for pk, state in states(clinic_id, ids).items()
        )

    transaction.on_commit(send, robust=True)


# --- connections (writes) -------------------------------------------------------------


def _lock(staff_id: int) -> None:
    # One person's connections change one at a time: "was I online?" stays true until we
    # commit. (SQLite serialises writers anyway; PostgreSQL locks the row.)
    StaffMember.objects.select_for_update().filter(pk=staff_id).first()


def connection_open(
    *, staff: StaffMember, channel_name: str, call_id=None, page_opened=None, now=None
) -> None:
    now = now or timezone.now()
    with transaction.atomic():
        _lock(staff.pk)
        was_online = is_online(staff.pk, now)
        StaffConnection.objects.update_or_create(
            channel_name=channel_name,
            defaults={
                "staff": staff,
                "call_id": call_id,
                "page_opened": page_opened,
                "connected_at": now,
                "last_seen": now,
            },
        )
        if not was_online:
            presence_changed(staff.clinic_id, [staff.pk])


def connection_seen(*, staff: StaffMember, channel_name: str, call_id=None, now=None) -> None:
    """The page's heartbeat. A row swept while the page slept comes back."""
    now = now or timezone.now()
    with transaction.atomic():
        _lock(staff.pk)
        was_online = is_online(staff.pk, now)
        updated = StaffConnection.objects.filter(channel_name=channel_name).update(last_seen=now)
        if not updated:
            StaffConnection.objects.create(
                staff=staff,
                channel_name=channel_name,
                call_id=call_id,
                connected_at=now,
                last_seen=now,
            )
        if not was_online:
            presence_changed(staff.clinic_id, [staff.pk])


def connection_close(*, staff: StaffMember, channel_name: str, clean: bool) -> None:
    """A socket closed. Only a clean close removes the row (see the module's comment)."""
    if not clean:
        return
    with transaction.atomic():
        _lock(staff.pk)
        deleted, _rows = StaffConnection.objects.filter(channel_name=channel_name).delete()
        if deleted and not is_online(staff.pk):
            presence_changed(staff.clinic_id, [staff.pk])


def connections_expire(*, clinic_id: int, now=None) -> list[tuple[int, object]]:
    """Delete the clinic's stale rows (crashed processes, lost networks); tell who went
    offline. Returns the rows removed, as (staff id, call id or None)."""
    now = now or timezone.now()
    stale = StaffConnection.objects.filter(
        staff__clinic_id=clinic_id, last_seen__lt=fresh_since(now)
    )
    rows = list(stale.values_list("pk", "staff_id", "call_id"))
    if not rows:
        return []
    with transaction.atomic():
        StaffConnection.objects.filter(pk__in=[row[0] for row in rows]).delete()
        presence_changed(clinic_id, {row[1] for row in rows})
    return [row[1:] for row in rows]
