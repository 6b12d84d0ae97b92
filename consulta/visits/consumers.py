"""One WebSocket per participant per visit: the waiting room, admission and the WebRTC
signalling relay. See docs/signalling.md for the protocol."""

import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http import Http404
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consulta.accounts.models import StaffMember
from consulta.audit.context import client_ip
from consulta.lib.errors import DomainError
from consulta.lib.realtime import clinic_visits_group, visit_group
from consulta.lib.websocket import SignallingReceiver, socket_language
from consulta.visits import services
from consulta.visits.access import (
    has_seat,
    holds_guest_visit,
    is_guest,
    participant_peer,
    visit_for_participant,
)
from consulta.visits.ice import ice_servers
from consulta.visits.models import Visit
from consulta.visits.signalling import RELAYED, SENDERS, parse_message

log = logging.getLogger("consulta.signalling")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_FULL = 4409
CLOSE_GONE = 4410
CLOSE_REPLACED = 4411


class VisitConsumer(SignallingReceiver, AsyncWebsocketConsumer):
    role: str | None = None
    status: str = Visit.Status.SCHEDULED
    # The session key of a guest (no account), which the services check against the link.
    guest_session_key: str | None = None
    # Sent away by the server (a renewed guest link): the others see "left", not "dropped".
    sent_away: bool = False
    # The same participant opened the visit again (another tab or device): this socket says
    # nothing more, and its closing is not the participant's leaving.
    replaced: bool = False
    parse = staticmethod(parse_message)

    @property
    def log_name(self) -> str:
        return f"visit {self.visit_id}"

    async def connect(self):
        user = self.scope["user"]
        session = self.scope.get("session")
        self.visit_id = self.scope["url_route"]["kwargs"]["visit_id"]
        if not user.is_authenticated and not await database_sync_to_async(holds_guest_visit)(
            session, self.visit_id
        ):
            log.warning("visit %s: unauthenticated socket refused", self.visit_id)
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        client_ip.set((self.scope.get("client") or [None])[0])  # for the audit row
        try:
            visit, role = await database_sync_to_async(visit_for_participant)(
                user, self.visit_id, session=session
            )
        except Http404:
            log.warning("visit %s: user %s is not a participant", self.visit_id, user.pk)
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if is_guest(visit, role, user):
            self.guest_session_key = session.session_key
        self.language = socket_language(self.scope, user, visit.clinic)
        self.peer, self.name = await database_sync_to_async(participant_peer)(visit, role, user)
        if role == "clinician" and not await database_sync_to_async(has_seat)(
            visit, int(self.peer[1:])
        ):
            # Over the mesh limit: say why in words, then close without joining anyone.
            await self.accept()
            await self._turn_away(
                "full",
                CLOSE_FULL,
                gettext_lazy(
                    "This video visit already has %(count)d participants, the most a call "
                    "can hold. You cannot join it."
                ),
                {"count": settings.VISIT_MAX_PARTICIPANTS},
            )
            return
        self.role = role
        self.status = visit.status
        self.group = visit_group(visit.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # One socket per participant: an older one (another tab, the phone after the
        # laptop) steps aside before the others hear that we joined.
        await database_sync_to_async(services.visit_socket_opened)(
            visit_id=visit.pk, peer=self.peer, channel=self.channel_name
        )
        await self.channel_layer.group_send(
            self.group, {"type": "peer.takeover", "peer": self.peer, "sender": self.channel_name}
        )
        if role == "doctor":
            await database_sync_to_async(services.visit_doctor_entered)(
                visit_id=visit.pk, user=user
            )
        await self._send(
            {
                "type": "hello",
                "role": role,
                "peer": self.peer,
                **services.visit_state(visit),
                # What the page's configuration holds too, for clients without the page.
                "ice_servers": await database_sync_to_async(ice_servers)(user, visit),
                "ice_transport_policy": settings.ICE_TRANSPORT_POLICY,
            }
        )
        await self.channel_layer.group_send(self.group, self._presence("joined"))

    def _presence(self, state: str) -> dict:
        return {
            "type": "peer.presence",
            "role": self.role,
            "peer": self.peer,
            "name": self.name,
            "state": state,
            "sender": self.channel_name,
        }

    async def disconnect(self, code):
        if self.role is None:
            return
        # Replaced, even if the news has not reached this socket yet (the old tab closed at
        # once): the participant is still here, on the newer socket.
        if self.replaced or not await database_sync_to_async(services.visit_socket_closed)(
            visit_id=self.visit_id, peer=self.peer, channel=self.channel_name
        ):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            return
        # Leaving (the page's Leave, End: 1000; a close frame without a code, 1005) is a
        # goodbye. A page reloaded or closed (1001) or a lost network (1006) is not: the
        # others wait for a reconnection for the grace period instead of hanging up.
        state = "left" if code in (1000, 1005) or self.sent_away else "dropped"
        await self.channel_layer.group_send(self.group, self._presence(state))
        await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.role == "patient" and self.status == Visit.Status.WAITING:
            await database_sync_to_async(services.visit_leave_waiting)(
                visit_id=self.visit_id,
                user=self.scope["user"],
                guest_session_key=self.guest_session_key,
            )

    async def _dispatch(self, message: dict) -> None:
        if self.replaced:
            return
        kind = message["type"]
        if self.role not in SENDERS[kind]:
            raise DomainError(_("You are not allowed to do this in this visit."), code="forbidden")
        user = self.scope["user"]
        if kind == "ping":
            await self._send({"type": "pong"})
        elif kind == "ready":
            await database_sync_to_async(services.visit_mark_ready)(
                visit_id=self.visit_id, user=user, guest_session_key=self.guest_session_key
            )
        elif kind == "admit":
            await database_sync_to_async(services.visit_admit)(visit_id=self.visit_id, user=user)
        elif kind == "end":
            await database_sync_to_async(services.visit_end)(visit_id=self.visit_id, user=user)
        elif kind == "notice":
            await database_sync_to_async(services.visit_send_waiting_message)(
                visit_id=self.visit_id, user=user, text=message["text"]
            )
        elif kind in RELAYED:
            if self.status != Visit.Status.IN_CALL:
                raise DomainError(_("The call has not started yet."), code="not_in_call")
            # The sender's `peer` is stamped here: nobody can speak for someone else.
            await self.channel_layer.group_send(
                self.group,
                {
                    "type": "peer.relay",
                    "message": message,
                    "from": self.peer,
                    "sender": self.channel_name,
                },
            )

    # --- events from the group -----------------------------------------------------

    async def visit_state(self, event):
        if self.replaced:
            return
        self.status = event["status"]
        await self._send(
            {
                "type": "state",
                "status": event["status"],
                "message": event["message"],
                "started_at": event["started_at"],
                "ended_at": event["ended_at"],
            }
        )
        if self.status == Visit.Status.ENDED:
            await self.close()

    async def visit_settings(self, event):
        """The doctor changed the patient's room settings: only the patient's page uses them."""
        if self.role != "patient" or self.replaced:
            return
        await self._send(
            {
                "type": "settings",
                "self_view": event["self_view"],
                "show_elapsed": event["show_elapsed"],
            }
        )

    async def visit_guest_revoked(self, event):
        """The doctor gave the guest a new link: the browser that spent the old one leaves."""
        if self.guest_session_key is None:
            return
        self.sent_away = True
        await self._turn_away(
            "link_renewed",
            CLOSE_GONE,
            gettext_lazy(
                "Your doctor has sent you a new link for this video visit. This page no longer "
                "works: open the new link."
            ),
        )

    async def peer_takeover(self, event):
        """The same participant has opened the visit on another socket: this one gives way."""
        if event["sender"] == self.channel_name or event["peer"] != self.peer or self.replaced:
            return
        self.replaced = True
        await self._turn_away(
            "replaced",
            CLOSE_REPLACED,
            gettext_lazy(
                "This video visit is now open in another window or on another device, and "
                "goes on there. You can close this page."
            ),
        )

    async def _turn_away(self, code: str, close_code: int, message, params=None) -> None:
        """Say why, in the person's language (`message` is lazy; `params` fill it in), then
        close for good."""
        with translation.override(self.language):
            text = str(message) % params if params else str(message)
        await self._send({"type": "error", "code": code, "message": text})
        await self.close(code=close_code)

    async def peer_presence(self, event):
        if event["sender"] == self.channel_name or self.replaced:
            return
        await self._send(
            {
                "type": "presence",
                "role": event["role"],
                "peer": event["peer"],
                "name": event["name"],
                "state": event["state"],
            }
        )
        if event["state"] == "joined":
            # Tell the newcomer we are here too, directly, across processes.
            await self.channel_layer.send(event["sender"], self._presence("here"))

    async def peer_relay(self, event):
        if event["sender"] == self.channel_name or self.replaced:
            return
        # A patient not yet admitted never receives offers, answers or candidates.
        if self.status != Visit.Status.IN_CALL:
            return
        message = event["message"]
        to = message.get("to")
        if to is not None and to != self.peer:
            return
        await self._send({**{k: v for k, v in message.items() if k != "to"}, "from": event["from"]})


class ClinicVisitsConsumer(AsyncWebsocketConsumer):
    """Doorbell for staff dashboards: "the visits changed, fetch the list again". Carries no
    patient data; the page refetches through the access-checked view."""

    group: str | None = None

    async def connect(self):
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        clinic_id = await database_sync_to_async(_staff_clinic_id)(user)
        if clinic_id is None:
            log.warning("dashboard socket refused for non-staff user %s", user.pk)
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = clinic_visits_group(clinic_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        # The dashboard only listens; anything but a ping is ignored.
        if text_data == '{"type":"ping"}':
            await self.send(text_data='{"type":"pong"}')

    async def visits_changed(self, event):
        await self.send(text_data='{"type":"visits_changed"}')


def _staff_clinic_id(user) -> int | None:
    return StaffMember.objects.filter(user=user).values_list("clinic_id", flat=True).first()
