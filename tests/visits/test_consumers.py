"""The visit socket and the clinic dashboard socket, through the whole ASGI stack: origin
check, session authentication, routing, the consumers and the channel layer."""

import uuid
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext

from consulta.visits.models import Visit
from tests.sockets import CANDIDATE, SDP, TIMEOUT, socket_opener

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def connect():
    """`await connect(who, path)` opens a socket as `who` (a StaffMember, Patient, User or None
    for anonymous). Every socket is disconnected at the end of the test."""
    async with socket_opener() as open_socket:
        yield open_socket


def peer_of(cast, role: str) -> str:
    return f"p{cast.patient.pk}" if role == "patient" else f"d{cast.doctor.pk}"


def presence(cast, role: str, state: str) -> dict:
    """A presence event as received, without the display name (see bare())."""
    return {"type": "presence", "role": role, "peer": peer_of(cast, role), "state": state}


def bare(message: dict) -> dict:
    return {k: v for k, v in message.items() if k != "name"}


def room(visit) -> str:
    return f"/ws/visits/{visit.pk}/"


DASHBOARD = "/ws/clinic/visits/"


async def fetch(visit) -> Visit:
    return await database_sync_to_async(Visit.objects.get)(pk=visit.pk)


async def set_status(visit, status, **fields) -> None:
    await database_sync_to_async(
        lambda: Visit.objects.filter(pk=visit.pk).update(status=status, **fields)
    )()


@pytest.fixture
def join(connect, cast, visit):
    """`doctor, patient = await join()`: both in the room, greetings read."""

    async def both():
        doctor = await connect(cast.doctor, room(visit))
        assert doctor.connected
        assert (await doctor.receive())["type"] == "hello"
        patient = await connect(cast.patient, room(visit))
        assert patient.connected
        assert (await patient.receive())["type"] == "hello"
        assert bare(await doctor.receive()) == presence(cast, "patient", "joined")
        assert bare(await patient.receive()) == presence(cast, "doctor", "here")
        return doctor, patient

    return both


@pytest.fixture
def admitted(join):
    """`doctor, patient = await admitted()`: the patient was ready and admitted."""

    async def in_call():
        doctor, patient = await join()
        await patient.send({"type": "ready"})
        assert (await doctor.receive())["status"] == "waiting"
        assert (await patient.receive())["status"] == "waiting"
        await doctor.send({"type": "admit"})
        assert (await doctor.receive())["status"] == "in_call"
        assert (await patient.receive())["status"] == "in_call"
        return doctor, patient

    return in_call


# --- who may open the visit socket --------------------------------------------------------


async def test_unauthenticated_socket_is_refused(connect, visit):
    socket = await connect(None, room(visit))
    assert not socket.connected
    assert socket.code == 4401


@pytest.mark.parametrize(
    "who", ["other_doctor", "doctor2", "secretary", "clinic_admin", "other_patient", "operator"]
)
async def test_people_outside_the_visit_are_refused(connect, cast, visit, who):
    socket = await connect(getattr(cast, who), room(visit))
    assert not socket.connected
    assert socket.code == 4403


async def test_patient_of_the_same_doctor_but_another_visit_is_refused(connect, cast, visit):
    socket = await connect(cast.patient_of_doctor2, room(visit))
    assert not socket.connected
    assert socket.code == 4403


async def test_visit_that_does_not_exist_is_refused(connect, cast):
    socket = await connect(cast.doctor, f"/ws/visits/{uuid.uuid4()}/")
    assert not socket.connected
    assert socket.code == 4403


async def test_foreign_origin_is_refused_and_logged(connect, cast, visit, caplog):
    socket = await connect(cast.doctor, room(visit), origin=b"http://evil.example")
    assert not socket.connected
    assert "WebSocket refused: foreign origin (http://evil.example)" in caplog.text


async def test_missing_origin_is_refused(connect, cast, visit):
    socket = await connect(cast.doctor, room(visit), origin=None)
    assert not socket.connected


async def test_doctor_is_greeted_with_role_and_status(connect, cast, visit):
    doctor = await connect(cast.doctor, room(visit))
    assert doctor.connected
    assert await doctor.receive() == {
        "type": "hello",
        "role": "doctor",
        "peer": peer_of(cast, "doctor"),
        "status": "scheduled",
        "message": "",
        "started_at": None,
        "ended_at": None,
        "ice_servers": [],
        "ice_transport_policy": "all",
    }
    assert await doctor.nothing()


async def test_patient_is_greeted_with_role_and_current_status(connect, cast, visit):
    await set_status(visit, Visit.Status.WAITING)
    patient = await connect(cast.patient, room(visit))
    assert patient.connected
    assert await patient.receive() == {
        "type": "hello",
        "role": "patient",
        "peer": peer_of(cast, "patient"),
        "status": "waiting",
        "message": "",
        "started_at": None,
        "ended_at": None,
        "ice_servers": [],
        "ice_transport_policy": "all",
    }


# --- presence ----------------------------------------------------------------------------


async def test_presence_joined_here_and_left(connect, cast, visit):
    doctor = await connect(cast.doctor, room(visit))
    await doctor.receive()  # hello
    patient = await connect(cast.patient, room(visit))
    assert (await patient.receive())["type"] == "hello"
    # The doctor hears the patient arrive; the patient hears the doctor is already there.
    assert bare(await doctor.receive()) == presence(cast, "patient", "joined")
    assert bare(await patient.receive()) == presence(cast, "doctor", "here")
    # Nobody hears their own presence.
    assert await doctor.nothing()
    assert await patient.nothing()
    await patient.communicator.disconnect(timeout=TIMEOUT)
    assert bare(await doctor.receive()) == presence(cast, "patient", "left")


async def test_first_to_arrive_hears_no_presence(connect, cast, visit):
    patient = await connect(cast.patient, room(visit))
    assert (await patient.receive())["type"] == "hello"
    assert await patient.nothing()


# --- the waiting room and admission --------------------------------------------------------


async def test_patient_ready_puts_both_in_waiting(join, visit):
    doctor, patient = await join()
    await patient.send({"type": "ready"})
    expected = {
        "type": "state",
        "status": "waiting",
        "message": "",
        "started_at": None,
        "ended_at": None,
    }
    assert await doctor.receive() == expected
    assert await patient.receive() == expected
    stored = await fetch(visit)
    assert stored.status == Visit.Status.WAITING
    assert stored.ready_at is not None


async def test_patient_cannot_admit(join, visit):
    doctor, patient = await join()
    await patient.send({"type": "ready"})
    await doctor.receive()
    await patient.receive()
    await patient.send({"type": "admit"})
    error = await patient.receive()
    assert error["type"] == "error"
    assert error["code"] == "forbidden"
    assert isinstance(error["message"], str) and error["message"]
    assert await doctor.nothing()
    stored = await fetch(visit)
    assert stored.status == Visit.Status.WAITING
    assert stored.started_at is None


@pytest.mark.parametrize("kind", ["end", "offer"])
async def test_patient_cannot_send_doctor_messages(join, visit, kind):
    doctor, patient = await join()
    await patient.send({"type": kind, "sdp": SDP})
    error = await patient.receive()
    assert (error["type"], error["code"]) == ("error", "forbidden")
    assert await doctor.nothing()
    assert (await fetch(visit)).status == Visit.Status.SCHEDULED


async def test_doctor_cannot_say_ready_for_the_patient(join, visit):
    doctor, patient = await join()
    await doctor.send({"type": "ready"})
    error = await doctor.receive()
    assert (error["type"], error["code"]) == ("error", "forbidden")
    assert await patient.nothing()
    assert (await fetch(visit)).status == Visit.Status.SCHEDULED


async def test_doctor_cannot_admit_before_the_patient_is_ready(join, visit):
    doctor, patient = await join()
    await doctor.send({"type": "admit"})
    error = await doctor.receive()
    assert (error["type"], error["code"]) == ("error", "not_waiting")
    assert await patient.nothing()
    assert (await fetch(visit)).status == Visit.Status.SCHEDULED


async def test_doctor_admits_and_both_are_in_the_call(join, visit):
    doctor, patient = await join()
    await patient.send({"type": "ready"})
    await doctor.receive()
    await patient.receive()
    await doctor.send({"type": "admit"})
    to_doctor = await doctor.receive()
    to_patient = await patient.receive()
    assert to_doctor == to_patient
    assert to_doctor["type"] == "state"
    assert to_doctor["status"] == "in_call"
    assert to_doctor["ended_at"] is None
    stored = await fetch(visit)
    assert stored.status == Visit.Status.IN_CALL
    assert stored.started_at is not None
    assert to_doctor["started_at"] == stored.started_at.isoformat()


# --- signalling relay --------------------------------------------------------------------


async def test_offer_before_admission_is_refused_and_not_relayed(join, visit):
    doctor, patient = await join()
    await patient.send({"type": "ready"})
    await doctor.receive()
    await patient.receive()
    await doctor.send({"type": "offer", "sdp": SDP})
    error = await doctor.receive()
    assert (error["type"], error["code"]) == ("error", "not_in_call")
    await doctor.send({"type": "ice", "candidate": CANDIDATE})
    error = await doctor.receive()
    assert (error["type"], error["code"]) == ("error", "not_in_call")
    assert await patient.nothing()


async def test_waiting_patient_cannot_send_answers_or_candidates(join):
    doctor, patient = await join()
    await patient.send({"type": "ready"})
    await doctor.receive()
    await patient.receive()
    for message in ({"type": "answer", "sdp": SDP}, {"type": "ice", "candidate": CANDIDATE}):
        await patient.send(message)
        error = await patient.receive()
        assert (error["type"], error["code"]) == ("error", "not_in_call")
    assert await doctor.nothing()


async def test_offer_and_answer_are_relayed_after_admission(admitted, cast):
    doctor, patient = await admitted()
    await doctor.send({"type": "offer", "sdp": SDP, "extra": "dropped"})
    assert await patient.receive() == {"type": "offer", "sdp": SDP, "from": peer_of(cast, "doctor")}
    assert await doctor.nothing()
    await patient.send({"type": "answer", "sdp": SDP})
    assert await doctor.receive() == {
        "type": "answer",
        "sdp": SDP,
        "from": peer_of(cast, "patient"),
    }
    assert await patient.nothing()


async def test_ice_and_media_flow_both_ways_without_echo(admitted, cast):
    doctor, patient = await admitted()
    ice = {"type": "ice", "candidate": CANDIDATE}
    await doctor.send(ice)
    assert await patient.receive() == {**ice, "from": peer_of(cast, "doctor")}
    assert await doctor.nothing()
    await patient.send(ice)
    assert await doctor.receive() == {**ice, "from": peer_of(cast, "patient")}
    await patient.send({"type": "ice", "candidate": None})
    assert await doctor.receive() == {
        "type": "ice",
        "candidate": None,
        "from": peer_of(cast, "patient"),
    }
    assert await patient.nothing()
    await patient.send({"type": "media", "audio": False, "video": True})
    assert await doctor.receive() == {
        "type": "media",
        "audio": False,
        "video": True,
        "from": peer_of(cast, "patient"),
    }
    assert await patient.nothing()


async def test_patient_cannot_send_an_offer_even_in_the_call(admitted):
    doctor, patient = await admitted()
    await patient.send({"type": "offer", "sdp": SDP})
    error = await patient.receive()
    assert (error["type"], error["code"]) == ("error", "forbidden")
    assert await doctor.nothing()


async def test_ping_gets_a_pong(join):
    doctor, patient = await join()
    await patient.send({"type": "ping"})
    assert await patient.receive() == {"type": "pong"}
    assert await doctor.nothing()


# --- bad input ---------------------------------------------------------------------------


async def test_malformed_json_is_an_error_and_the_socket_stays_open(join):
    doctor, patient = await join()
    await doctor.send("{not json")
    error = await doctor.receive()
    assert (error["type"], error["code"]) == ("error", "malformed")
    assert isinstance(error["message"], str) and error["message"]
    await doctor.send({"type": "ping"})
    assert await doctor.receive() == {"type": "pong"}
    assert await patient.nothing()


async def test_deeply_nested_json_is_an_error_and_the_socket_stays_open(join):
    doctor, patient = await join()
    await doctor.send("[" * 5000 + "]" * 5000)
    error = await doctor.receive()
    assert (error["type"], error["code"]) == ("error", "malformed")
    await doctor.send({"type": "ping"})
    assert await doctor.receive() == {"type": "pong"}


async def test_invalid_offer_is_malformed_and_not_relayed(admitted):
    doctor, patient = await admitted()
    await doctor.send({"type": "offer", "sdp": "<script>alert(1)</script>"})
    error = await doctor.receive()
    assert (error["type"], error["code"]) == ("error", "malformed")
    assert await patient.nothing()


async def test_unknown_type_is_an_error(join):
    doctor, patient = await join()
    await patient.send({"type": "peer.relay", "message": {"type": "offer", "sdp": SDP}})
    error = await patient.receive()
    assert (error["type"], error["code"]) == ("error", "unknown_type")
    assert await doctor.nothing()
    await patient.send({"type": "ping"})
    assert await patient.receive() == {"type": "pong"}


async def test_oversized_message_is_refused_and_the_socket_closed(admitted, visit):
    doctor, patient = await admitted()
    sdp = "v=0" + "a" * settings.SIGNALLING_MAX_MESSAGE_BYTES
    await doctor.send({"type": "offer", "sdp": sdp})
    error = await doctor.receive()
    assert (error["type"], error["code"]) == ("error", "too_large")
    assert (await doctor.receive_close())["code"] == 1009
    assert await patient.nothing()


async def test_binary_frame_is_an_error(join):
    doctor, patient = await join()
    await doctor.communicator.send_to(bytes_data=b'{"type":"ping"}')
    error = await doctor.receive()
    assert (error["type"], error["code"]) == ("error", "binary")
    await doctor.send({"type": "ping"})
    assert await doctor.receive() == {"type": "pong"}


async def test_errors_are_sent_in_the_users_language(connect, cast, visit):
    def italian():
        cast.patient.user.language = "it"
        cast.patient.user.save(update_fields=["language"])

    await database_sync_to_async(italian)()
    patient = await connect(cast.patient, room(visit))
    await patient.receive()
    await patient.send({"type": "admit"})
    error = await patient.receive()
    assert error["code"] == "forbidden"
    assert isinstance(error["message"], str) and error["message"].strip()


# --- leaving and ending ------------------------------------------------------------------


async def test_patient_leaving_while_waiting_puts_the_visit_back_to_scheduled(join, visit, cast):
    doctor, patient = await join()
    await patient.send({"type": "ready"})
    await doctor.receive()
    await patient.receive()
    assert (await fetch(visit)).status == Visit.Status.WAITING
    await patient.communicator.disconnect(timeout=TIMEOUT)
    events = [await doctor.receive(), await doctor.receive()]
    assert presence(cast, "patient", "left") in [bare(e) for e in events]
    assert {
        "type": "state",
        "status": "scheduled",
        "message": "",
        "started_at": None,
        "ended_at": None,
    } in events
    stored = await fetch(visit)
    assert stored.status == Visit.Status.SCHEDULED
    assert stored.ready_at is None


async def test_patient_leaving_during_the_call_does_not_undo_admission(admitted, visit, cast):
    doctor, patient = await admitted()
    await patient.communicator.disconnect(timeout=TIMEOUT)
    assert bare(await doctor.receive()) == presence(cast, "patient", "left")
    assert await doctor.nothing()
    assert (await fetch(visit)).status == Visit.Status.IN_CALL


async def test_doctor_ends_and_both_sockets_close(admitted, cast, visit):
    doctor, patient = await admitted()
    await doctor.send({"type": "end"})
    to_doctor = await doctor.receive()
    to_patient = await patient.receive()
    assert to_doctor == to_patient
    assert to_doctor["type"] == "state"
    assert to_doctor["status"] == "ended"
    assert to_doctor["ended_at"] is not None
    await doctor.receive_close()
    await patient.receive_close()
    stored = await fetch(visit)
    assert stored.status == Visit.Status.ENDED
    assert stored.ended_at is not None
    assert stored.ended_by_id == cast.doctor.user_id


# --- the clinic dashboard socket -----------------------------------------------------------


@pytest.mark.parametrize("who", ["doctor", "doctor2", "secretary", "clinic_admin"])
async def test_dashboard_accepts_staff_of_the_clinic(connect, cast, who):
    socket = await connect(getattr(cast, who), DASHBOARD)
    assert socket.connected
    await socket.send('{"type":"ping"}')
    assert await socket.communicator.receive_from(timeout=TIMEOUT) == '{"type":"pong"}'


@pytest.mark.parametrize("who", ["patient", "other_patient", "operator"])
async def test_dashboard_refuses_people_who_are_not_staff(connect, cast, who):
    socket = await connect(getattr(cast, who), DASHBOARD)
    assert not socket.connected
    assert socket.code == 4403


async def test_dashboard_refuses_anonymous(connect):
    socket = await connect(None, DASHBOARD)
    assert not socket.connected
    assert socket.code == 4401


async def test_dashboard_refuses_a_foreign_origin(connect, cast):
    socket = await connect(cast.secretary, DASHBOARD, origin=b"http://evil.example")
    assert not socket.connected


async def test_dashboard_rings_for_its_clinic_only(connect, cast, visit):
    ours = await connect(cast.secretary, DASHBOARD)
    theirs = await connect(cast.other_doctor, DASHBOARD)
    assert ours.connected and theirs.connected
    patient = await connect(cast.patient, room(visit))
    await patient.receive()  # hello
    await patient.send({"type": "ready"})
    assert (await patient.receive())["status"] == "waiting"
    assert await ours.communicator.receive_from(timeout=TIMEOUT) == '{"type":"visits_changed"}'
    assert await theirs.nothing(timeout=0.5)
    assert await ours.nothing()


async def test_dashboard_ignores_anything_but_ping(connect, cast):
    socket = await connect(cast.secretary, DASHBOARD)
    await socket.send({"type": "admit"})
    await socket.send("not json")
    assert await socket.nothing()


# --- the waiting-room message ----------------------------------------------------------------


async def test_doctors_message_reaches_the_waiting_patient_and_survives_a_reconnect(
    connect, join, cast, visit
):
    doctor, patient = await join()
    await doctor.send({"type": "notice", "text": "I'm running 10 minutes late."})
    for socket in (doctor, patient):
        state = await socket.receive()
        assert (state["type"], state["message"]) == ("state", "I'm running 10 minutes late.")
    again = await connect(cast.patient, room(visit))
    hello = await again.receive()
    assert hello["message"] == "I'm running 10 minutes late."


@pytest.mark.parametrize(("cookie", "expected"), [("nb", "nb"), (None, "it"), ("xx", "it")])
async def test_refusals_speak_the_language_picked_in_the_browser(
    connect, cast, visit, cookie, expected
):
    """As the pages do: the language cookie, else the person's own (here Italian)."""
    await database_sync_to_async(
        lambda: (
            type(cast.patient.user).objects.filter(pk=cast.patient.user_id).update(language="it")
        )
    )()
    patient = await connect(cast.patient, room(visit), language=cookie)
    assert (await patient.receive())["type"] == "hello"
    await patient.send({"type": "admit"})
    error = await patient.receive()
    with translation.override(expected):
        assert error["message"] == gettext("You are not allowed to do this in this visit.")
    assert expected == "en" or error["message"] != "You are not allowed to do this in this visit."


async def test_a_busy_doctor_is_given_the_way_to_the_call_left_open(join, cast):
    other = await database_sync_to_async(Visit.objects.create)(
        clinic=cast.clinic,
        patient=cast.patient_of_doctor2,
        doctor=cast.doctor,
        scheduled_at=timezone.now(),
        status=Visit.Status.IN_CALL,
        started_at=timezone.now(),
    )
    doctor, patient = await join()
    await patient.send({"type": "ready"})
    assert (await doctor.receive())["status"] == "waiting"
    await doctor.send({"type": "admit"})
    error = await doctor.receive_type("error")
    assert error["code"] == "busy" and error["visit_url"] == f"/visits/{other.pk}/"


async def test_room_settings_changed_now_reach_the_patients_page(join, cast):
    from consulta.visits import services

    doctor, patient = await join()
    await database_sync_to_async(services.room_settings_save)(
        by=cast.doctor, patient=cast.patient, shows_self_view=False, shows_elapsed_time=True
    )
    assert await patient.receive() == {"type": "settings", "self_view": False, "show_elapsed": True}
    assert await doctor.nothing()  # doctors always see both


async def test_a_patient_cannot_send_a_waiting_room_message(join):
    _doctor, patient = await join()
    await patient.send({"type": "notice", "text": "Hello"})
    assert (await patient.receive())["code"] == "forbidden"


async def test_a_patient_too_early_is_told_when_the_room_opens(join, visit):
    await database_sync_to_async(
        lambda: Visit.objects.filter(pk=visit.pk).update(
            scheduled_at=visit.scheduled_at + timedelta(hours=2)
        )
    )()
    doctor, patient = await join()
    await patient.send({"type": "ready"})
    error = await patient.receive()
    assert error["type"] == "error" and error["code"] == "too_early"
    assert await doctor.nothing()


async def test_a_lost_connection_is_dropped_not_left(join, cast):
    doctor, patient = await join()
    await patient.communicator.disconnect(code=1006)
    assert bare(await doctor.receive()) == presence(cast, "patient", "dropped")


@pytest.mark.parametrize("code", [1000, 1005])
async def test_leaving_the_visit_has_left(join, cast, code):
    doctor, patient = await join()
    await patient.communicator.disconnect(code=code)
    assert bare(await doctor.receive()) == presence(cast, "patient", "left")


async def test_a_reloaded_or_closed_page_may_come_back(join, cast):
    """1001: the page went away (reloaded, closed, navigated). The participant may be back in
    a moment, so the others wait the grace period, as for a lost network."""
    doctor, patient = await join()
    await patient.communicator.disconnect(code=1001)
    assert bare(await doctor.receive()) == presence(cast, "patient", "dropped")


async def test_a_second_page_of_the_same_participant_takes_over(connect, admitted, cast, visit):
    """The patient opens the visit again (a second tab, the phone after the laptop): the
    older page is told why and closed; the doctor sees the patient (back) in the room and
    never a "left"; the call's messages reach only the new page."""
    doctor, first = await admitted()
    second = await connect(cast.patient, room(visit))
    assert (await second.receive())["status"] == "in_call"
    replaced = await first.receive()
    assert (replaced["type"], replaced["code"]) == ("error", "replaced")
    assert "another window" in replaced["message"]
    assert (await first.receive_close())["code"] == 4411
    assert bare(await doctor.receive()) == presence(cast, "patient", "joined")
    await doctor.send({"type": "offer", "sdp": SDP})
    assert (await second.receive_type("offer"))["sdp"] == SDP
    await first.close(1000)
    assert await doctor.nothing()
    assert (await fetch(visit)).status == Visit.Status.IN_CALL


async def test_a_second_page_in_the_waiting_room_keeps_the_patient_waiting(
    connect, join, cast, visit
):
    doctor, first = await join()
    await first.send({"type": "ready"})
    assert (await doctor.receive())["status"] == "waiting"
    second = await connect(cast.patient, room(visit))
    assert (await second.receive())["status"] == "waiting"
    await first.close(1000)  # the replaced page closing is not the patient leaving
    assert bare(await doctor.receive_type("presence")) == presence(cast, "patient", "joined")
    extra = []
    while not await doctor.nothing():
        extra.append(await doctor.receive())
    assert extra == [], extra
    assert (await fetch(visit)).status == Visit.Status.WAITING


async def test_hello_carries_the_participants_own_ice_servers_and_policy(
    connect, cast, visit, settings
):
    settings.ICE_SERVERS_STUN = ["stun:stun.example.test:3478"]
    settings.TURN_URLS = ["turn:turn.example.test:3478?transport=udp"]
    settings.TURN_SECRET = "s3cret"
    settings.ICE_TRANSPORT_POLICY = "relay"
    patient = await connect(cast.patient, room(visit))
    hello = await patient.receive()
    stun, turn = hello["ice_servers"]
    assert stun == {"urls": "stun:stun.example.test:3478"}
    assert turn["urls"] == settings.TURN_URLS
    assert turn["username"].endswith(f":{cast.patient.user.pk}")
    assert turn["credential"]
    assert hello["ice_transport_policy"] == "relay"
