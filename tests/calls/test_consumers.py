"""The staff socket and the call socket, through the whole ASGI stack: origin check, session
authentication, routing, the consumers and the channel layer."""

import asyncio
import uuid

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from consulta.calls import services
from consulta.calls.models import InternalCall, StaffConnection
from consulta.visits import services as visit_services
from consulta.visits.models import Visit
from tests.calls.conftest import go_online
from tests.sockets import CANDIDATE, SDP, TIMEOUT, Socket, socket_opener

pytestmark = pytest.mark.django_db(transaction=True)

STAFF = "/ws/staff/"


class StaffSocket(Socket):
    async def presence_of(self, staff) -> str:
        """The next presence event about this staff member."""
        while True:
            message = await self.receive_type("presence")
            if message["staff"] == staff.pk:
                return message["state"]

    async def receive_close(self) -> dict:
        """The close, after any messages still on their way (presence, ringing)."""
        while True:
            output = await self.communicator.receive_output(timeout=TIMEOUT)
            if output["type"] == "websocket.close":
                return output


@pytest.fixture
async def connect():
    async with socket_opener(StaffSocket) as open_socket:
        yield open_socket


def room(call) -> str:
    return f"/ws/calls/{call.pk}/"


async def fetch(call) -> InternalCall:
    return await database_sync_to_async(InternalCall.objects.get)(pk=call.pk)


@database_sync_to_async
def start_call(caller, callee) -> InternalCall:
    go_online(callee)
    return services.call_start(by=caller, callee=callee)


# --- the staff socket ---------------------------------------------------------------------


async def test_staff_socket_refuses_the_unauthenticated(connect):
    socket = await connect(None, STAFF)
    assert (socket.connected, socket.code) == (False, 4401)


@pytest.mark.parametrize("who", ["patient", "operator"])
async def test_staff_socket_refuses_people_who_are_not_staff(connect, cast, who):
    socket = await connect(getattr(cast, who), STAFF)
    assert (socket.connected, socket.code) == (False, 4403)


async def test_staff_socket_refuses_a_foreign_origin(connect, cast):
    socket = await connect(cast.doctor, STAFF, origin=b"http://evil.example")
    assert not socket.connected


@pytest.mark.parametrize("who", ["doctor", "secretary", "clinic_admin"])
async def test_staff_are_greeted_with_the_clinic_s_presence(connect, cast, who):
    socket = await connect(getattr(cast, who), STAFF)
    assert socket.connected
    hello = await socket.receive_type("hello")
    me = getattr(cast, who).pk
    assert hello["me"] == me
    assert hello["heartbeat_seconds"] == 25
    assert hello["presence"][str(me)] == "online"
    assert hello["presence"][str(cast.doctor2.pk)] == "offline"
    assert str(cast.other_doctor.pk) not in hello["presence"]
    assert hello["calls"] == []


async def test_colleagues_see_a_person_come_online_and_go_offline(connect, cast):
    secretary = await connect(cast.secretary, STAFF)
    await secretary.receive_type("hello")
    other_clinic = await connect(cast.other_doctor, STAFF)
    await other_clinic.receive_type("hello")
    await other_clinic.receive_type("presence")  # its own
    doctor = await connect(cast.doctor, STAFF)
    assert await secretary.presence_of(cast.doctor) == "online"
    await doctor.close(code=1001)  # the page was left
    assert await secretary.presence_of(cast.doctor) == "offline"
    assert await other_clinic.nothing()  # another clinic hears nothing of it


async def test_a_ping_refreshes_the_heartbeat(connect, cast):
    doctor = await connect(cast.doctor, STAFF)
    await doctor.receive_type("hello")
    await database_sync_to_async(
        lambda: StaffConnection.objects.update(last_seen="2020-01-01T00:00:00Z")
    )()
    await doctor.send({"type": "ping"})
    assert await doctor.receive_type("pong") == {"type": "pong"}
    row = await database_sync_to_async(StaffConnection.objects.get)(staff=cast.doctor)
    assert row.last_seen.year > 2020


async def test_a_doctor_admitting_a_patient_is_in_a_call_for_colleagues(connect, cast, visit):
    doctor = await connect(cast.doctor, STAFF)
    await doctor.receive_type("hello")
    secretary = await connect(cast.secretary, STAFF)
    await secretary.receive_type("hello")
    await database_sync_to_async(
        lambda: Visit.objects.filter(pk=visit.pk).update(status=Visit.Status.WAITING)
    )()
    await database_sync_to_async(visit_services.visit_admit)(
        visit_id=visit.pk, user=cast.doctor.user
    )
    assert await secretary.presence_of(cast.doctor) == "in_call"
    await database_sync_to_async(visit_services.visit_end)(visit_id=visit.pk, user=cast.doctor.user)
    assert await secretary.presence_of(cast.doctor) == "online"


async def test_a_visit_change_that_changes_no_presence_says_nothing(connect, cast, visit):
    secretary = await connect(cast.secretary, STAFF)
    await secretary.receive_type("hello")
    await secretary.receive_type("presence")  # her own
    await database_sync_to_async(visit_services.visit_mark_ready)(
        visit_id=visit.pk, user=cast.patient.user
    )
    assert await secretary.nothing(0.5)


async def test_a_dropped_socket_leaves_its_row_to_go_stale(connect, cast):
    doctor = await connect(cast.doctor, STAFF)
    await doctor.receive_type("hello")
    await doctor.close(code=1006)
    assert await database_sync_to_async(StaffConnection.objects.filter(staff=cast.doctor).exists)()


async def test_the_callee_s_pages_ring_and_the_caller_s_learn_the_answer(connect, cast):
    callee = await connect(cast.doctor2, STAFF)
    await callee.receive_type("hello")
    caller = await connect(cast.doctor, STAFF)
    await caller.receive_type("hello")
    call = await start_call(cast.doctor, cast.doctor2)
    ring = (await callee.receive_type("call"))["call"]
    assert ring["id"] == str(call.pk)
    assert ring["status"] == "ringing"
    assert ring["caller"] == {"id": cast.doctor.pk, "name": "Dr. Anna Rossi"}
    assert ring["url"] == f"/calls/{call.pk}/"
    assert ring["accept_url"] == f"/calls/{call.pk}/accept/"
    assert (await caller.receive_type("call"))["call"]["status"] == "ringing"
    await database_sync_to_async(services.call_decline)(call_id=call.pk, user=cast.doctor2.user)
    assert (await caller.receive_type("call"))["call"]["status"] == "declined"
    assert (await callee.receive_type("call"))["call"]["status"] == "declined"


async def test_a_page_opened_while_it_rings_shows_the_call(connect, cast):
    call = await start_call(cast.doctor, cast.doctor2)
    callee = await connect(cast.doctor2, STAFF)
    hello = await callee.receive_type("hello")
    assert [c["id"] for c in hello["calls"]] == [str(call.pk)]
    secretary = await connect(cast.secretary, STAFF)
    assert (await secretary.receive_type("hello"))["calls"] == []


# --- the call socket: who may connect --------------------------------------------------------


async def test_call_socket_refuses_the_unauthenticated(connect, cast):
    call = await start_call(cast.doctor, cast.doctor2)
    socket = await connect(None, room(call))
    assert (socket.connected, socket.code) == (False, 4401)


@pytest.mark.parametrize(
    "who", ["secretary", "clinic_admin", "other_doctor", "patient", "other_patient", "operator"]
)
async def test_call_socket_refuses_everyone_but_the_two(connect, cast, who):
    call = await start_call(cast.doctor, cast.doctor2)
    socket = await connect(getattr(cast, who), room(call))
    assert (socket.connected, socket.code) == (False, 4403)


async def test_call_socket_refuses_a_call_that_does_not_exist(connect, cast):
    socket = await connect(cast.doctor, f"/ws/calls/{uuid.uuid4()}/")
    assert (socket.connected, socket.code) == (False, 4403)


async def test_call_socket_refuses_a_foreign_origin(connect, cast):
    call = await start_call(cast.doctor, cast.doctor2)
    socket = await connect(cast.doctor, room(call), origin=b"http://evil.example")
    assert not socket.connected


# --- the call socket: a call -------------------------------------------------------------------


@pytest.fixture
def in_call(connect, cast):
    """`caller, callee, call = await in_call()`: rung, accepted, both pages on the call."""

    async def both():
        call = await start_call(cast.doctor, cast.doctor2)
        caller = await connect(cast.doctor, room(call))
        hello = await caller.receive()
        assert hello["type"] == "hello"
        assert (hello["role"], hello["status"]) == ("caller", "ringing")
        await database_sync_to_async(services.call_accept)(call_id=call.pk, user=cast.doctor2.user)
        state = await caller.receive_type("state")
        assert state["status"] == "accepted"
        assert state["answered_at"] is not None
        callee = await connect(cast.doctor2, room(call))
        assert (await callee.receive())["role"] == "callee"
        assert await caller.receive_type("presence") == {
            "type": "presence",
            "role": "callee",
            "state": "joined",
        }
        assert await callee.receive_type("presence") == {
            "type": "presence",
            "role": "caller",
            "state": "here",
        }
        return caller, callee, call

    return both


async def test_the_caller_offers_and_the_callee_answers(in_call):
    caller, callee, _call = await in_call()
    await caller.send({"type": "offer", "sdp": SDP, "extra": "dropped"})
    assert await callee.receive() == {"type": "offer", "sdp": SDP}
    await callee.send({"type": "answer", "sdp": SDP})
    assert await caller.receive() == {"type": "answer", "sdp": SDP}
    await callee.send({"type": "ice", "candidate": CANDIDATE})
    assert await caller.receive() == {"type": "ice", "candidate": CANDIDATE}
    await caller.send({"type": "media", "audio": False, "video": True})
    assert await callee.receive() == {"type": "media", "audio": False, "video": True}
    assert await caller.nothing()  # never echoed


async def test_the_callee_cannot_offer(in_call):
    caller, callee, _call = await in_call()
    await callee.send({"type": "offer", "sdp": SDP})
    error = await callee.receive()
    assert (error["type"], error["code"]) == ("error", "forbidden")
    assert await caller.nothing()


async def test_nothing_is_relayed_before_the_call_is_accepted(connect, cast):
    call = await start_call(cast.doctor, cast.doctor2)
    caller = await connect(cast.doctor, room(call))
    await caller.receive()
    await caller.send({"type": "offer", "sdp": SDP})
    assert (await caller.receive())["code"] == "not_in_call"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("not json", "malformed"),
        ({"type": "admit"}, "unknown_type"),
        ({"type": "offer", "sdp": "hello"}, "malformed"),
        ({"type": "media", "audio": "yes", "video": True}, "malformed"),
    ],
)
async def test_malformed_messages_are_refused(in_call, payload, code):
    caller, _callee, _call = await in_call()
    await caller.send(payload)
    error = await caller.receive()
    assert (error["type"], error["code"]) == ("error", code)


async def test_a_message_too_large_closes_the_socket(in_call):
    caller, _callee, _call = await in_call()
    await caller.send({"type": "offer", "sdp": "v=0" + "x" * 70_000})
    assert (await caller.receive())["code"] == "too_large"
    assert (await caller.receive_close())["code"] == 1009


async def test_either_hangs_up_and_both_pages_close(in_call, cast):
    caller, callee, call = await in_call()
    await callee.send({"type": "hangup"})
    for socket in (caller, callee):
        state = await socket.receive_type("state")
        assert state["status"] == "ended"
        assert state["ended_at"] is not None
        await socket.receive_close()
    ended = await fetch(call)
    assert ended.status == "ended"
    assert ended.ended_by_id == cast.doctor2.user_id


async def test_a_ping_keeps_the_call_page_counted(in_call):
    caller, _callee, call = await in_call()
    await caller.send({"type": "ping"})
    assert await caller.receive() == {"type": "pong"}
    rows = await database_sync_to_async(
        lambda: list(StaffConnection.objects.filter(call=call).values_list("staff_id", flat=True))
    )()
    assert len(rows) == 2


async def test_a_dropped_call_page_does_not_end_the_call(in_call):
    caller, callee, call = await in_call()
    await callee.close(code=1006)
    assert await caller.receive_type("presence") == {
        "type": "presence",
        "role": "callee",
        "state": "dropped",
    }
    assert (await fetch(call)).status == "accepted"


@pytest.mark.parametrize("code", [1000, 1005])
async def test_the_pages_own_goodbye_hangs_up_at_once(in_call, code):
    caller, callee, call = await in_call()
    await callee.close(code=code)
    assert await caller.receive_type("presence") == {
        "type": "presence",
        "role": "callee",
        "state": "left",
    }
    assert (await caller.receive_type("state"))["status"] == "ended"
    assert (await fetch(call)).status == "ended"


async def test_a_call_page_closed_or_reloaded_hangs_up_after_the_grace_period(
    in_call, cast, settings
):
    settings.VISIT_RECONNECT_GRACE_SECONDS = 1
    caller, callee, call = await in_call()
    await callee.close(code=1001)
    assert (await caller.receive_type("presence"))["state"] == "dropped"
    await asyncio.sleep(0.5)
    assert (await fetch(call)).status == "accepted"  # it may be a reload
    assert (await caller.receive_type("state", timeout=5))["status"] == "ended"
    ended = await fetch(call)
    assert (ended.status, ended.ended_by_id) == ("ended", cast.doctor2.user_id)


async def test_a_reloaded_call_page_is_back_in_the_same_call(in_call, connect, cast, settings):
    settings.VISIT_RECONNECT_GRACE_SECONDS = 1
    caller, callee, call = await in_call()
    await callee.close(code=1001)
    assert (await caller.receive_type("presence"))["state"] == "dropped"
    again = await connect(cast.doctor2, room(call))
    hello = await again.receive()
    assert (hello["type"], hello["status"]) == ("hello", "accepted")
    assert (await caller.receive_type("presence"))["state"] == "joined"
    await asyncio.sleep(1.5)  # past the grace period
    assert (await fetch(call)).status == "accepted"
    await caller.send({"type": "offer", "sdp": SDP})  # negotiated afresh
    assert (await again.receive_type("offer"))["sdp"] == SDP


async def test_a_page_back_and_closed_again_gets_the_whole_grace_period_again(
    in_call, connect, cast, settings
):
    settings.VISIT_RECONNECT_GRACE_SECONDS = 2
    caller, callee, call = await in_call()
    await callee.close(code=1001)
    again = await connect(cast.doctor2, room(call))
    await again.receive()
    await asyncio.sleep(1.2)
    await again.close(code=1001)  # the first close's timer fires 0.8 s from now
    await asyncio.sleep(1.6)
    assert (await fetch(call)).status == "accepted"
    assert (await caller.receive_type("state", timeout=5))["status"] == "ended"


async def test_the_call_page_opened_again_elsewhere_takes_over(in_call, connect, cast):
    caller, callee, call = await in_call()
    again = await connect(cast.doctor2, room(call))  # Marco opens the call in another tab
    assert (await again.receive())["type"] == "hello"
    error = await callee.receive_type("error")
    assert error["code"] == "replaced"
    assert error["message"].startswith("This call is now open in another window")
    assert (await callee.communicator.receive_output(timeout=5))["code"] == 4411
    assert (await caller.receive_type("presence"))["state"] == "joined"  # not "dropped"
    assert await caller.nothing(timeout=0.5)
    assert await again.receive() == {"type": "presence", "role": "caller", "state": "here"}
    assert await again.nothing(timeout=0.2)  # nothing from Marco's own old tab
    await caller.send({"type": "offer", "sdp": SDP})
    assert (await again.receive_type("offer"))["sdp"] == SDP
    await callee.close(code=4411)  # the old page's socket is gone: nobody hears of it
    assert await caller.nothing(timeout=0.5)
    assert (await fetch(call)).status == "accepted"
    assert (await fetch(call)).callee_away_since is None
    rows = await database_sync_to_async(
        lambda: list(StaffConnection.objects.filter(call=call).values_list("staff_id", flat=True))
    )()
    assert sorted(rows) == sorted([cast.doctor.pk, cast.doctor2.pk])  # one row each


async def test_an_older_call_page_reconnecting_gives_way_to_the_newer_one(in_call, connect, cast):
    caller, callee, call = await in_call()
    newer = await connect(cast.doctor2, room(call) + "?opened=4000000000")
    assert (await newer.receive())["type"] == "hello"
    assert (await newer.receive_type("presence"))["state"] == "here"  # from Anna's page
    assert (await callee.receive_type("error"))["code"] == "replaced"
    assert (await caller.receive_type("presence"))["state"] == "joined"
    older = await connect(cast.doctor2, room(call) + "?opened=1000000000")  # back online
    assert (await older.receive())["type"] == "hello"
    assert (await older.receive_type("error"))["code"] == "replaced"
    assert (await older.communicator.receive_output(timeout=5))["code"] == 4411
    assert await newer.nothing(timeout=0.5)  # the newer page stays
    assert await caller.nothing(timeout=0.2)  # and Anna's page hears nothing of the older


async def test_a_ping_of_a_page_marked_away_brings_its_person_back(in_call, cast):
    """A sweep found the page silent (a laptop's lid closed) and marked Marco away; the
    page wakes up and pings."""
    _caller, callee, call = await in_call()
    await database_sync_to_async(
        lambda: InternalCall.objects.filter(pk=call.pk).update(callee_away_since=timezone.now())
    )()
    await callee.send({"type": "ping"})
    assert await callee.receive() == {"type": "pong"}
    assert (await fetch(call)).callee_away_since is None


async def test_the_caller_leaving_while_it_rings_cancels(connect, cast):
    call = await start_call(cast.doctor, cast.doctor2)
    caller = await connect(cast.doctor, room(call))
    await caller.receive()
    await caller.close(code=1001)
    await asyncio.sleep(0.2)
    assert (await fetch(call)).status == "cancelled"


async def test_an_unanswered_call_becomes_missed_on_time(connect, cast, settings):
    settings.INTERNAL_CALL_RING_SECONDS = 1
    call = await start_call(cast.doctor, cast.doctor2)
    caller = await connect(cast.doctor, room(call))
    await caller.receive()
    state = await caller.receive_type("state", timeout=5)
    assert state["status"] == "missed"
    await caller.receive_close()
    assert (await fetch(call)).status == "missed"


async def test_a_page_of_a_call_that_is_over_is_told_and_closed(connect, cast):
    call = await start_call(cast.doctor, cast.doctor2)
    await database_sync_to_async(services.call_decline)(call_id=call.pk, user=cast.doctor2.user)
    caller = await connect(cast.doctor, room(call))
    hello = await caller.receive()
    assert (hello["type"], hello["status"]) == ("hello", "declined")
    await caller.receive_close()
