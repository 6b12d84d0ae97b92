"""Writes on internal calls and ringtone settings. Each call transition locks the row, checks
who asks, audits, and publishes after commit: the call's state to its two call pages and to
both people's staff pages, and presence to the clinic's staff when someone enters or leaves
a call.

Ringing calls nobody answered become "missed" after INTERNAL_CALL_RING_SECONDS: a timer in
the call page's socket does it on time, and every look at the calls (a new call, the
Colleagues page, a heartbeat's sweep) does it lazily, so a crashed process loses nothing.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from consulta.accounts.models import StaffMember
from consulta.audit.services import audit_record
from consulta.calls import presence
from consulta.calls.groups import call_group, staff_group
from consulta.calls.models import InternalCall, RingSettings, StaffConnection
from consulta.lib.errors import DomainError
from consulta.lib.realtime import publish_all_on_commit
from consulta.visits.services import ongoing_visits

log = logging.getLogger(__name__)

Status = InternalCall.Status
FINAL_STATUSES = (Status.DECLINED, Status.MISSED, Status.CANCELLED, Status.ENDED)
# How often one clinic's stale connections and calls are looked for, at most.
SWEEP_EVERY_SECONDS = 10


def ring_duration() -> timedelta:
    return timedelta(seconds=settings.INTERNAL_CALL_RING_SECONDS)


def ring_time_left(call: InternalCall, now: datetime | None = None) -> float:
    """Seconds until a ringing call counts as missed (0 when it does not ring)."""
    if call.status != Status.RINGING:
        return 0.0
    left = call.created_at + ring_duration() - (now or timezone.now())
    return max(0.0, left.total_seconds())


def ring_seconds_left(call: InternalCall, now: datetime | None = None) -> int:
    return int(ring_time_left(call, now))


# --- starting and answering -------------------------------------------------------------


def call_start(*, by: StaffMember, callee: StaffMember) -> InternalCall:
    """`by` calls a colleague of the same clinic, who must be online and free."""
    if by.pk == callee.pk:
        raise DomainError(_("You cannot call yourself."), code="self")
    if by.clinic_id != callee.clinic_id:
        raise DomainError(_("You can only call colleagues of your clinic."), code="forbidden")
    now = timezone.now()
    # Committed on its own: a refusal below must not bring an expired call back to life.
    _close_stale(Q(caller__in=[by, callee]) | Q(callee__in=[by, callee]), now)
    calls_end_left_by(staff=by, now=now)  # committed on its own too: calling out is leaving
    with transaction.atomic():
        # Both people's rows, in a fixed order: two calls to one person serialise here.
        people = StaffMember.objects.select_for_update().filter(pk__in=[by.pk, callee.pk])
        list(people.order_by("pk"))
        if _busy(by.pk, now):
            raise DomainError(_("You are already in a call: hang up first."), code="busy")
        if _busy(callee.pk, now):
            raise DomainError(
                _("%(name)s is busy in another call. Try again later.") % {"name": callee},
                code="busy",
            )
        if not presence.is_online(callee.pk, now):
            raise DomainError(_("%(name)s is offline.") % {"name": callee}, code="offline")
        call = InternalCall.objects.create(clinic_id=by.clinic_id, caller=by, callee=callee)
        audit_record(actor=by.user, action="call.start", target=call, callee=callee.pk)
        _publish(call)
    log.info("internal call %s: %s calls %s", call.pk, by.pk, callee.pk)
    return call


def call_accept(*, call_id, user) -> InternalCall:
    now = timezone.now()
    call_expire(call_id=call_id, now=now)  # committed on its own: the refusal below stays
    with transaction.atomic():
        call = _locked(call_id)
        if call.callee.user_id != user.id:
            raise DomainError(_("Only the person called can answer."), code="forbidden")
        if call.status == Status.ACCEPTED:
            return call
        if call.status != Status.RINGING:
            raise DomainError(_over_message(call), code=call.status)
        if _in_visit(call.callee_id, now):
            raise DomainError(_("You are in a video visit: end it before you answer."), code="busy")
        call.status = Status.ACCEPTED
        call.answered_at = now
        call.save(update_fields=["status", "answered_at"])
        audit_record(actor=user, action="call.accept", target=call)
        _publish(call)
        presence.presence_changed(call.clinic_id, [call.caller_id, call.callee_id])
    return call


def call_decline(*, call_id, user) -> InternalCall:
    """The person called says no. A call that stopped ringing meanwhile is left as it is."""
    with transaction.atomic():
        call = _locked(call_id)
        if call.callee.user_id != user.id:
            raise DomainError(_("Only the person called can decline."), code="forbidden")
        _expire_if_due(call, timezone.now())
        if call.status == Status.RINGING:
            _finish(call, Status.DECLINED, user=user, action="call.decline")
    return call


def call_hang_up(*, call_id, user, if_status: str | None = None) -> InternalCall:
    """Either person hangs up: the caller cancels a ringing call, the callee declines it,
    and an accepted call ends for both. With `if_status`, only a call still in that status
    (a page that closes while it rang must not end a call answered meanwhile)."""
    with transaction.atomic():
        call = _locked(call_id)
        if user.id not in (call.caller.user_id, call.callee.user_id):
            raise DomainError(_("You are not in this call."), code="forbidden")
        _expire_if_due(call, timezone.now())
        if if_status is not None and call.status != if_status:
            return call
        if call.status == Status.RINGING:
            if call.caller.user_id == user.id:
                _finish(call, Status.CANCELLED, user=user, action="call.cancel")
            else:
                _finish(call, Status.DECLINED, user=user, action="call.decline")
        elif call.status == Status.ACCEPTED:
            _finish(call, Status.ENDED, user=user, action="call.end")
    return call


# --- away from the call page ----------------------------------------------------------
#
# A call page that is reloaded or closed (close 1001: a browser cannot tell the two apart),
# or whose socket goes stale, does not hang up at once: its person is "away" from then on,
# and hangs up once away for the reconnection grace period, unless a call page of theirs
# is back by then. The time lives on the call, so any process (the closing socket's timer,
# any heartbeat's sweep) can end the call on time, and a page that comes back and goes
# again starts the wait afresh.


def away_grace() -> timedelta:
    return timedelta(seconds=settings.VISIT_RECONNECT_GRACE_SECONDS)


def _away_field(call: InternalCall, staff_id: int) -> str:
    return "caller_away_since" if staff_id == call.caller_id else "callee_away_since"


def call_page_closed(*, call_id, staff_id: int, now: datetime | None = None) -> None:
    """A call page of the person closed without hanging up, or the sweep found its socket
    silent (then from now, not from when it was last seen: a newer page of theirs may have
    come and gone since). Unless another page of theirs holds the call, they are away."""
    now = now or timezone.now()
    with transaction.atomic():
        call = _locked(call_id)
        if call.status != Status.ACCEPTED or _held_by(call, staff_id, now):
            return
        field = _away_field(call, staff_id)
        if getattr(call, field) is None:
            setattr(call, field, now)
            call.save(update_fields=[field])


def call_page_opened(*, call_id, staff_id: int, heartbeat: bool = False) -> None:
    """A call page of the person holds the call (a page opened, or still: its heartbeat):
    they are no longer away. A heartbeat looks first, without a lock (nothing to write in
    the usual case; a mark it misses, the next one or calls_end_abandoned clears)."""
    away = Q(caller_id=staff_id, caller_away_since__isnull=False) | Q(
        callee_id=staff_id, callee_away_since__isnull=False
    )
    if heartbeat and not InternalCall.objects.filter(away, pk=call_id).exists():
        return
    with transaction.atomic():
        call = _locked(call_id)  # after a call_page_closed under way, not before it
        if call.status != Status.ACCEPTED:
            return
        field = _away_field(call, staff_id)
        if getattr(call, field) is not None:
            setattr(call, field, None)
            call.save(update_fields=[field])


def calls_end_abandoned(*, calls: Q, now: datetime | None = None) -> None:
    """End the accepted calls (of `calls`) that one person has been away from for the
    grace period: they hung up by leaving (audited as theirs, `reason: left`)."""
    now = now or timezone.now()
    since = now - away_grace()
    due = InternalCall.objects.filter(calls, status=Status.ACCEPTED).filter(
        Q(caller_away_since__lte=since) | Q(callee_away_since__lte=since)
    )
    for call_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            call = _locked(call_id)
            if call.status != Status.ACCEPTED:
                continue
            away = []
            for field, person in (
                ("caller_away_since", call.caller),
                ("callee_away_since", call.callee),
            ):
                when = getattr(call, field)
                if when is None or when > since:
                    continue
                if _held_by(call, person.pk, now):  # back, though nothing said so yet
                    setattr(call, field, None)
                    call.save(update_fields=[field])
                else:
                    away.append((when, person))
            if away:
                _when, person = min(away, key=lambda item: item[0])
                _finish(call, Status.ENDED, user=person.user, action="call.end", reason="left")


def call_page_superseded(
    *, call_id, staff_id: int, opened: float, channel_name: str, now: datetime | None = None
) -> bool:
    """Whether a newer call page of the person holds the call: then a page made before it
    (an old laptop waking up, reconnecting) gives way at once."""
    newer = Q(page_opened__gt=opened) | Q(page_opened=opened, channel_name__gt=channel_name)
    return StaffConnection.objects.filter(
        newer,
        call_id=call_id,
        staff_id=staff_id,
        last_seen__gte=presence.fresh_since(now or timezone.now()),
    ).exists()


def _held_by(call: InternalCall, staff_id: int, now: datetime) -> bool:
    """Whether a call page of the person holds the call now (counted, recently seen)."""
    return StaffConnection.objects.filter(
        call=call, staff_id=staff_id, last_seen__gte=presence.fresh_since(now)
    ).exists()


def call_expire(*, call_id, now: datetime | None = None) -> InternalCall:
    """A ringing call whose time is up becomes missed (the caller reads "No answer")."""
    with transaction.atomic():
        call = _locked(call_id)
        _expire_if_due(call, now or timezone.now())
    return call


# --- sweeping -----------------------------------------------------------------------------


def calls_sweep(*, clinic_id: int, force: bool = False, now: datetime | None = None) -> None:
    """Forget the clinic's stale connections and close its stale calls. Cheap, but run at
    most every SWEEP_EVERY_SECONDS per clinic (per process) unless forced."""
    if not force and not cache.add(f"calls.sweep.{clinic_id}", 1, SWEEP_EVERY_SECONDS):
        return
    now = now or timezone.now()
    for staff_id, call_id in presence.connections_expire(clinic_id=clinic_id, now=now):
        if call_id is not None:  # a call page's socket went silent: away from now
            call_page_closed(call_id=call_id, staff_id=staff_id, now=now)
    _close_stale(Q(clinic_id=clinic_id), now)


def _close_stale(calls: Q, now: datetime) -> None:
    """Ringing calls past their time become missed; accepted calls that no call page has
    held for a minute (both pages crashed or lost) end."""
    due = InternalCall.objects.filter(
        calls, status=Status.RINGING, created_at__lte=now - ring_duration()
    )
    for call_id in due.values_list("pk", flat=True):
        call_expire(call_id=call_id, now=now)
    held = StaffConnection.objects.filter(
        call=OuterRef("pk"), last_seen__gte=presence.fresh_since(now)
    )
    dead = InternalCall.objects.filter(
        calls,
        status=Status.ACCEPTED,
        answered_at__lt=presence.fresh_since(now),
    ).exclude(Exists(held))
    for call_id in dead.values_list("pk", flat=True):
        with transaction.atomic():
            call = _locked(call_id)
            if call.status == Status.ACCEPTED:
                _finish(call, Status.ENDED, user=None, action="call.end", reason="abandoned")
    calls_end_abandoned(calls=calls, now=now)


# --- helpers ----------------------------------------------------------------------------


def _locked(call_id) -> InternalCall:
    call = (
        InternalCall.objects.select_for_update(of=("self",))
        .select_related("caller__user", "callee__user")
        .filter(pk=call_id)
        .first()
    )
    if call is None:
        raise DomainError(_("This call does not exist."), code="not_found")
    return call


def calls_end_left_by(*, staff: StaffMember, now: datetime | None = None) -> None:
    """End the accepted calls of `staff` that no call page of theirs holds: they closed it
    without hanging up (the grace period for a reload has not run out yet) and now call
    someone else or admit a patient, so they have left it. (A page whose network dropped
    still holds its call for a minute: that person is refused as busy.)"""
    now = now or timezone.now()
    accepted = (
        InternalCall.objects.filter(Q(caller=staff) | Q(callee=staff), status=Status.ACCEPTED)
        .select_for_update(of=("self",))
        .select_related("caller__user", "callee__user")
    )
    with transaction.atomic():
        for call in accepted:  # one at most (one live call per person)
            if not _held_by(call, staff.pk, now):
                _finish(call, Status.ENDED, user=staff.user, action="call.end", reason="left")


def _busy(staff_id: int, now: datetime) -> bool:
    live = InternalCall.objects.filter(
        Q(caller_id=staff_id) | Q(callee_id=staff_id), status__in=InternalCall.LIVE_STATUSES
    )
    return live.exists() or _in_visit(staff_id, now)


def _in_visit(staff_id: int, now: datetime) -> bool:
    return ongoing_visits(now).filter(doctor_id=staff_id).exists()


def _expire_if_due(call: InternalCall, now: datetime) -> None:
    if call.status == Status.RINGING and now >= call.created_at + ring_duration():
        _finish(call, Status.MISSED, user=None, action="call.missed")


def _finish(call: InternalCall, status: str, *, user, action: str, **detail) -> None:
    was_accepted = call.status == Status.ACCEPTED
    call.status = status
    call.ended_at = timezone.now()
    call.ended_by = user
    call.save(update_fields=["status", "ended_at", "ended_by"])
    audit_record(actor=user, action=action, target=call, **detail)
    _publish(call)
    if was_accepted:
        presence.presence_changed(call.clinic_id, [call.caller_id, call.callee_id])


def _over_message(call: InternalCall) -> str:
    return {
        Status.DECLINED: _("This call was declined."),
        Status.MISSED: _("This call was not answered in time."),
        Status.CANCELLED: _("%(name)s cancelled the call.") % {"name": call.caller},
    }.get(call.status, _("This call is over."))


def call_payload(call: InternalCall, now: datetime | None = None) -> dict:
    """What the two people's pages learn about a call: names and state, nothing else."""
    return {
        "id": str(call.pk),
        "status": call.status,
        "caller": {"id": call.caller_id, "name": str(call.caller)},
        "callee": {"id": call.callee_id, "name": str(call.callee)},
        "url": reverse("call_room", args=[call.pk]),
        "accept_url": reverse("call_accept", args=[call.pk]),
        "decline_url": reverse("call_decline", args=[call.pk]),
        "ring_seconds_left": ring_seconds_left(call, now),
    }


def call_state(call: InternalCall) -> dict:
    """The call page's view of the call (docs/internal-calls.md)."""
    return {
        "status": call.status,
        "answered_at": call.answered_at.isoformat() if call.answered_at else None,
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "ring_seconds_left": ring_seconds_left(call),
    }


def _publish(call: InternalCall) -> None:
    payload = call_payload(call)
    publish_all_on_commit(
        [
            (call_group(call.pk), {"type": "call.state", **call_state(call)}),
            *(
                (staff_group(staff_id), {"type": "call.changed", "call": payload})
                for staff_id in (call.caller_id, call.callee_id)
            ),
        ]
    )


def ringing_calls_for(staff: StaffMember) -> list[InternalCall]:
    """The calls ringing for this person now (a page opened while it rings shows them)."""
    now = timezone.now()
    calls = InternalCall.objects.filter(callee=staff, status=Status.RINGING).select_related(
        "caller__user", "callee__user"
    )
    return [c for c in calls if ring_seconds_left(c, now) > 0]


# --- ringtone settings ------------------------------------------------------------------


def ring_settings_of(user) -> RingSettings:
    """The person's ringtone settings, or the defaults (not saved) when they chose none."""
    return RingSettings.objects.filter(user=user).first() or RingSettings(user=user)


def ring_settings_save(*, user, tone: str, volume: int) -> RingSettings:
    if tone not in RingSettings.Tone.values:
        raise DomainError(_("Choose one of the ringtones."), code="invalid_tone")
    if isinstance(volume, bool) or not isinstance(volume, int) or not 0 <= volume <= 100:
        raise DomainError(_("Choose a volume from 0 to 100."), code="invalid_volume")
    row, _created = RingSettings.objects.update_or_create(
        user=user, defaults={"tone": tone, "volume": volume}
    )
    return row
