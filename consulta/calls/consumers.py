"""Two sockets: the staff socket every staff page keeps open (presence, incoming calls), and
the call socket of the call page (state, presence of the other person, WebRTC signalling).
Protocol: docs/internal-calls.md."""

import asyncio
import contextlib
import json
import logging
import math
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db.models import Q
from django.http import Http404
from django.utils import translation
from django.utils.translation import gettext as _

from consulta.accounts.models import StaffMember
from consulta.audit.context import client_ip
from consulta.calls import presence, services
from consulta.calls.access import call_for_participant
from consulta.calls.groups import call_group, clinic_staff_group, staff_group
from consulta.calls.models import InternalCall
from consulta.calls.signalling import RELAYED, SENDERS, parse_message
from consulta.lib.errors import DomainError
from consulta.lib.realtime import clinic_visits_group
from consulta.lib.websocket import SignallingReceiver, socket_language

log = logging.getLogger("consulta.signalling")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_REPLACED = 4411  # the same person opened the call page again elsewhere
# A page that closes (1000, 1001; 1005 when its script closes without a code) removes its
# connection at once; a lost network (1006) leaves it to go stale (see presence).
CLEAN_CLOSES = frozenset({1000, 1001, 1005})
_PING = {"type": "ping"}


def _staff_of(user) -> StaffMember | None:
    return StaffMember.objects.select_related("user", "clinic").filter(user=user).first()


def _page_opened(scope) -> float:
    """When the call page was made (its socket's `opened`, the server's clock); now for a
    client without a page."""
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("opened", [])
    try:
        opened = float(values[0])
    except (IndexError, ValueError):
        return time.time()
    return opened if math.isfinite(opened) else time.time()


# Closes that a page's own script makes when its person leaves (1005: without a code).
GOODBYES = frozenset({1000, 1005})
# Tasks that outlive their socket (a reference each, or the event loop may drop them).
_background: set[asyncio.Task] = set()


def _in_background(coroutine) -> None:
    task = asyncio.create_task(coroutine)
    _background.add(task)
    task.add_done_callback(_background_done)


def _background_done(task: asyncio.Task) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed", exc_info=task.exception())


async def _end_if_still_away(call_id) -> None:
    """Once the grace period after a call page closed has passed, end the call if its
    person is still away (services: a page that came back, or went again later, is not).
    A server stopped meanwhile loses this timer; the sweep on any heartbeat does it then."""
    await asyncio.sleep(settings.VISIT_RECONNECT_GRACE_SECONDS + 0.5)
    await database_sync_to_async(services.calls_end_abandoned)(calls=Q(pk=call_id))


class StaffConsumer(AsyncWebsocketConsumer):
    """Open on every staff page: presence of the clinic's staff, and calls ringing for me.

    A doctor admitted to or leaving a video visit's call changes presence too. The visits
    app knows nothing of presence: it rings its clinic doorbell after commit, and each
    staff socket then reads the clinic's states again and tells its page what changed (a
    few small queries per visit change and open page)."""

    staff: StaffMember | None = None
    known: dict[int, str]

    async def connect(self):
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        staff = await database_sync_to_async(_staff_of)(user)
        if staff is None:
            log.warning("staff socket refused for non-staff user %s", user.pk)
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.staff = staff
        self.known = {}
        self.joined = [
            clinic_staff_group(staff.clinic_id),
            staff_group(staff.pk),
            clinic_visits_group(staff.clinic_id),
        ]
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await database_sync_to_async(presence.connection_open)(
            staff=staff, channel_name=self.channel_name
        )
        await self._send(await database_sync_to_async(self._hello)())

    def _hello(self) -> dict:
        staff = self.staff
        services.calls_sweep(clinic_id=staff.clinic_id)
        self.known = presence.states(staff.clinic_id)
        return {
            "type": "hello",
            "me": staff.pk,
            "heartbeat_seconds": presence.HEARTBEAT_SECONDS,
            "presence": {str(pk): state for pk, state in self.known.items()},
            "calls": [services.call_payload(c) for c in services.ringing_calls_for(staff)],
        }

    async def disconnect(self, code):
        if self.staff is None:
            return
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        await database_sync_to_async(presence.connection_close)(
            staff=self.staff, channel_name=self.channel_name, clean=code in CLEAN_CLOSES
        )

    async def receive(self, text_data=None, bytes_data=None):
        # The page only pings (its heartbeat); anything else is ignored.
        if text_data is None or len(text_data) > 100:
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            return
        if message == _PING:
            await database_sync_to_async(self._heartbeat)()
            await self._send({"type": "pong"})

    def _heartbeat(self) -> None:
        presence.connection_seen(staff=self.staff, channel_name=self.channel_name)
        services.calls_sweep(clinic_id=self.staff.clinic_id)

    async def presence_changed(self, event):
        self.known[event["staff"]] = event["state"]
        await self._send({"type": "presence", "staff": event["staff"], "state": event["state"]})

    async def visits_changed(self, event):
        states = await database_sync_to_async(presence.states)(self.staff.clinic_id)
        for pk, state in states.items():
            if self.known.get(pk) != state:
                self.known[pk] = state
                await self._send({"type": "presence", "staff": pk, "state": state})

    async def call_changed(self, event):
        await self._send({"type": "call", "call": event["call"]})

    async def _send(self, payload: dict) -> None:
        await self.send(text_data=json.dumps(payload))


class CallConsumer(SignallingReceiver, AsyncWebsocketConsumer):
    """One socket per person per call page: the call's state, the other person's presence,
    and the WebRTC signalling relay (only while the call is accepted)."""

    role: str | None = None
    status: str = InternalCall.Status.RINGING
    expiry: asyncio.Task | None = None
    counted = False  # whether this socket has a presence row
    replaced = False  # a newer call page of the same person took over
    parse = staticmethod(parse_message)

    @property
    def log_name(self) -> str:
        return f"internal call {self.call_id}"

    async def connect(self):
        user = self.scope["user"]
        self.call_id = self.scope["url_route"]["kwargs"]["call_id"]
        self.opened = _page_opened(self.scope)
        if not user.is_authenticated:
            log.warning("internal call %s: unauthenticated socket refused", self.call_id)
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        client_ip.set((self.scope.get("client") or [None])[0])  # for the audit rows
        try:
            call, role = await database_sync_to_async(call_for_participant)(user, self.call_id)
        except Http404:
            log.warning("internal call %s: user %s is not a participant", self.call_id, user.pk)
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.role = role
        self.status = call.status
        self.staff = call.caller if role == "caller" else call.callee
        self.language = socket_language(self.scope, user, call.clinic)
        self.group = call_group(call.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._send({"type": "hello", "role": role, **services.call_state(call)})
        if not call.is_live:
            await self.close()
            return
        # One call page per person: this one, if a newer one is on the call already (an old
        # laptop waking up); otherwise an older one (another tab, another device) gives way,
        # before the other person hears that we joined.
        if await database_sync_to_async(services.call_page_superseded)(
            call_id=call.pk,
            staff_id=self.staff.pk,
            opened=self.opened,
            channel_name=self.channel_name,
        ):
            await self._give_way()
            return
        await self.channel_layer.group_send(self.group, self._takeover())
        await database_sync_to_async(presence.connection_open)(
            staff=self.staff,
            channel_name=self.channel_name,
            call_id=call.pk,
            page_opened=self.opened,
        )
        await database_sync_to_async(services.call_page_opened)(
            call_id=call.pk, staff_id=self.staff.pk
        )
        self.counted = True
        await self.channel_layer.group_send(
            self.group,
            {"type": "peer.presence", "role": role, "state": "joined", "sender": self.channel_name},
        )
        if call.status == InternalCall.Status.RINGING:
            self.expiry = asyncio.create_task(self._expire_after(services.ring_time_left(call)))

    async def _expire_after(self, seconds: float) -> None:
        # Every look at the calls expires them too (services); this makes it happen on time.
        while True:
            await asyncio.sleep(seconds + 0.2)
            try:
                call = await database_sync_to_async(services.call_expire)(call_id=self.call_id)
            except DomainError:
                return
            seconds = services.ring_time_left(call)
            if call.status != InternalCall.Status.RINGING:
                return

    def _stop_expiry(self) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None

    async def disconnect(self, code):
        if self.role is None:
            return
        self._stop_expiry()
        if self.replaced:  # its person is still on the call, on the newer page
            await self.channel_layer.group_discard(self.group, self.channel_name)
            if self.counted:
                await database_sync_to_async(presence.connection_close)(
                    staff=self.staff, channel_name=self.channel_name, clean=True
                )
            return
        clean = code in CLEAN_CLOSES
        # The page's own goodbye (its script closes: 1000, or 1005 without a code) is final.
        # A page reloaded or closed (1001) is not, since a browser cannot tell the two apart;
        # as for a lost network (1006), the other page shows "reconnecting" meanwhile.
        goodbye = code in GOODBYES
        await self.channel_layer.group_send(
            self.group,
            {
                "type": "peer.presence",
                "role": self.role,
                "state": "left" if goodbye else "dropped",
                "sender": self.channel_name,
            },
        )
        await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.counted:
            await database_sync_to_async(presence.connection_close)(
                staff=self.staff, channel_name=self.channel_name, clean=clean
            )
        if self.status not in InternalCall.LIVE_STATUSES:
            return
        if self.status == InternalCall.Status.RINGING:
            # The caller's page closing cancels at once (the other phone must not ring for
            # nobody), unless it was answered meanwhile; the callee's page never declines
            # (it may be on its way to answer).
            if self.role == "caller" and clean:
                await self._hang_up(if_status=InternalCall.Status.RINGING)
        elif goodbye:
            await self._hang_up()
        elif clean:
            # Closed or reloaded during the call: its person is away, and hangs up if still
            # away after the grace period. (A dropped socket stays counted for a minute; the
            # sweep makes its person away if it does not come back: services.calls_sweep.)
            await database_sync_to_async(services.call_page_closed)(
                call_id=self.call_id, staff_id=self.staff.pk
            )
            _in_background(_end_if_still_away(self.call_id))

    async def _hang_up(self, **options) -> None:
        with contextlib.suppress(DomainError):
            await database_sync_to_async(services.call_hang_up)(
                call_id=self.call_id, user=self.scope["user"], **options
            )

    async def _dispatch(self, message: dict) -> None:
        if self.replaced:
            return
        kind = message["type"]
        if self.role not in SENDERS[kind]:
            raise DomainError(_("You are not allowed to do this in this call."), code="forbidden")
        if kind == "ping":
            await database_sync_to_async(self._heartbeat)()
            await self._send({"type": "pong"})
        elif kind == "hangup":
            await database_sync_to_async(services.call_hang_up)(
                call_id=self.call_id, user=self.scope["user"]
            )
        elif kind in RELAYED:
            if self.status != InternalCall.Status.ACCEPTED:
                raise DomainError(_("The call has not started yet."), code="not_in_call")
            await self.channel_layer.group_send(
                self.group,
                {"type": "peer.relay", "message": message, "sender": self.channel_name},
            )

    def _heartbeat(self) -> None:
        if self.counted and self.status in InternalCall.LIVE_STATUSES:
            presence.connection_seen(
                staff=self.staff, channel_name=self.channel_name, call_id=self.call_id
            )
            # Back, if a sweep found this page silent for a while (a laptop's lid closed).
            services.call_page_opened(call_id=self.call_id, staff_id=self.staff.pk, heartbeat=True)

    # --- events from the group -----------------------------------------------------

    def _takeover(self) -> dict:
        return {
            "type": "peer.takeover",
            "role": self.role,
            "opened": self.opened,
            "sender": self.channel_name,
        }

    async def peer_takeover(self, event):
        """Another socket of the same person on this call: the socket of the older page
        gives way (two pages connecting at once, or an older page reconnecting after a newer
        one opened, agree on which). An older one hears it from the newer one directly."""
        if event["sender"] == self.channel_name or event["role"] != self.role or self.replaced:
            return
        # (A process of the previous release sends no `opened`: its page counts as older.)
        if (event.get("opened", 0.0), event["sender"]) < (self.opened, self.channel_name):
            await self.channel_layer.send(event["sender"], self._takeover())
            return
        await self._give_way()

    async def _give_way(self) -> None:
        self.replaced = True
        self._stop_expiry()
        with translation.override(self.language):
            text = _(
                "This call is now open in another window or on another device, and goes on "
                "there. You can close this page."
            )
        await self._send({"type": "error", "code": "replaced", "message": text})
        await self.close(code=CLOSE_REPLACED)

    async def call_state(self, event):
        if self.replaced:
            return
        self.status = event["status"]
        if self.status != InternalCall.Status.RINGING:
            self._stop_expiry()
        await self._send(
            {
                "type": "state",
                "status": event["status"],
                "answered_at": event["answered_at"],
                "ended_at": event["ended_at"],
                "ring_seconds_left": event["ring_seconds_left"],
            }
        )
        if self.status not in InternalCall.LIVE_STATUSES:
            await self.close()

    async def peer_presence(self, event):
        # Only the other person's pages: one of our own is taking over (peer_takeover).
        if event["sender"] == self.channel_name or event["role"] == self.role or self.replaced:
            return
        await self._send({"type": "presence", "role": event["role"], "state": event["state"]})
        if event["state"] == "joined":
            # Tell the newcomer we are here too, directly, across processes.
            await self.channel_layer.send(
                event["sender"],
                {
                    "type": "peer.presence",
                    "role": self.role,
                    "state": "here",
                    "sender": self.channel_name,
                },
            )

    async def peer_relay(self, event):
        if event["sender"] == self.channel_name or self.replaced:
            return
        if self.status != InternalCall.Status.ACCEPTED:
            return
        await self._send(event["message"])
