"""Calls of up to four: the visit's doctor, the patient and the other doctors scheduled on
the visit's booking ("clinicians") in one room, each connected to each (a mesh). The visit
socket through the whole ASGI stack, the access rules, the pages and the booking limit."""

import json
from dataclasses import dataclass

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from consulta.accounts.models import CareTeam, StaffMember
from consulta.scheduling import services as scheduling
from consulta.scheduling.models import AppointmentType, Booking, BookingHold, ContactMode
from consulta.visits.access import (
    extra_clinician_ids,
    has_seat,
    participant_role,
    visits_for_staff,
)
from consulta.visits.models import Visit
from tests.conftest import make_staff
from tests.scheduling.conftest import make_type, refused
from tests.sockets import CANDIDATE, SDP, Socket, socket_opener

pytestmark = pytest.mark.django_db(transaction=True)

# --- sockets -------------------------------------------------------------------------------


class MeshSocket(Socket):
    """A socket of the call; `peer`, `role` and `name` say who it is."""

    def __init__(self, communicator, connected, code, who):
        super().__init__(communicator, connected, code)
        self.peer, self.role, self.name = who.peer, who.role, who.name

    async def leave(self, code=1000) -> None:
        await self.close(code)


@dataclass(frozen=True)
class Who:
    """A participant as the others see them: their user, `peer`, role and display name."""

    user: object
    peer: str
    role: str
    name: str

    @property
    def pk(self) -> int:
        return int(self.peer[1:])

    def presence(self, state: str) -> dict:
        return {
            "type": "presence",
            "role": self.role,
            "peer": self.peer,
            "name": self.name,
            "state": state,
        }


def staff_who(staff: StaffMember, role: str = "clinician") -> Who:
    return Who(staff.user, f"d{staff.pk}", role, str(staff))


@pytest.fixture
async def connect():
    """`await connect(who, visit)` opens the visit's socket as `who`; every socket is
    disconnected at the end of the test."""
    async with socket_opener(MeshSocket) as open_socket:

        async def open_room(who: Who, visit, language=None) -> MeshSocket:
            return await open_socket(who.user, room(visit), who=who, language=language)

        yield open_room


def room(visit) -> str:
    return f"/ws/visits/{visit.pk}/"


def ordered(messages: list[dict]) -> list[dict]:
    """Messages from several senders arrive in any order: compare them sorted."""
    return sorted(messages, key=lambda m: json.dumps(m, sort_keys=True))


async def fetch(visit) -> Visit:
    return await database_sync_to_async(Visit.objects.get)(pk=visit.pk)


# --- the cast of a mesh call --------------------------------------------------------------------


@dataclass
class Mesh:
    booking: Booking
    visit: Visit
    doctor: Who
    patient: Who
    first: Who  # cast.doctor2, the first other doctor on the booking
    second: Who  # a third doctor of the group practice, the second on the booking
    spare: StaffMember  # a fourth doctor of the group practice, not on the booking
    outsider: StaffMember  # a doctor of the clinic outside the group, not on the booking


def group_doctor(cast, email, first, last) -> StaffMember:
    member = make_staff(cast.clinic, email, StaffMember.Role.DOCTOR, first, last, "Dr.")
    CareTeam.objects.get(clinic=cast.clinic, kind=CareTeam.Kind.GROUP).members.add(member)
    return member


@pytest.fixture
def video_kind(cast) -> AppointmentType:
    """A type offered in person and by video (the booking says which)."""
    return make_type(cast.clinic_admin, name="Visita", default_contact_mode=ContactMode.VIDEO)


def book(cast, kind, participants, *, contact_mode=ContactMode.VIDEO, **options) -> Booking:
    options.setdefault("by", cast.doctor)
    options.setdefault("clinician", cast.doctor)
    options.setdefault("patient", cast.patient)
    return scheduling.booking_create(
        kind=kind,
        starts_at=timezone.now(),
        contact_mode=contact_mode,
        participants=participants,
        outside_hours=True,
        **options,
    )


@pytest.fixture
def mesh(cast, video_kind) -> Mesh:
    """A video booking for now: the cast's doctor with their patient, and two other doctors
    of the group practice."""
    third = group_doctor(cast, "doctor3@alfa.test", "Lucia", "Ferri")
    spare = group_doctor(cast, "doctor4@alfa.test", "Pietro", "Gallo")
    outsider = make_staff(
        cast.clinic, "doctor5@alfa.test", StaffMember.Role.DOCTOR, "Rita", "Marino", "Dr."
    )
    booking = book(cast, video_kind, [cast.doctor2, third])
    return Mesh(
        booking=booking,
        visit=booking.visit,
        doctor=staff_who(cast.doctor, "doctor"),
        patient=Who(cast.patient.user, f"p{cast.patient.pk}", "patient", cast.patient.full_name),
        first=staff_who(cast.doctor2),
        second=staff_who(third),
        spare=spare,
        outsider=outsider,
    )


def add_hold(booking: Booking, staff: StaffMember) -> None:
    """A hold written directly: booking_create refuses more than two other doctors."""
    BookingHold.objects.create(
        booking=booking, clinician=staff, starts_at=booking.starts_at, ends_at=booking.ends_at
    )


@pytest.fixture
def gather(connect, mesh):
    """`sockets = await gather(mesh.doctor, mesh.patient, mesh.first)`: each enters in turn;
    greetings and presence are read and checked."""

    async def enter(*people: Who) -> list[Socket]:
        sockets: list[Socket] = []
        for who in people:
            socket = await connect(who, mesh.visit)
            assert socket.connected, who
            hello = await socket.receive()
            assert (hello["type"], hello["role"], hello["peer"]) == ("hello", who.role, who.peer)
            # The newcomer hears everyone already there; they all hear the newcomer.
            assert ordered(await socket.receive_many(len(sockets))) == ordered(
                [s_who.presence("here") for s_who in people[: len(sockets)]]
            )
            for other in sockets:
                assert await other.receive() == who.presence("joined")
            sockets.append(socket)
        for socket in sockets:
            assert await socket.nothing(0.1)
        return sockets

    return enter


async def admit(sockets: list[Socket]) -> None:
    """The patient says ready and the doctor admits; everyone hears both."""
    by_role = {s.role: s for s in sockets}
    await by_role["patient"].send({"type": "ready"})
    for socket in sockets:
        assert (await socket.receive())["status"] == "waiting"
    await by_role["doctor"].send({"type": "admit"})
    for socket in sockets:
        assert (await socket.receive())["status"] == "in_call"


# --- joining --------------------------------------------------------------------------------


async def test_a_scheduled_doctor_joins_as_clinician_and_everyone_sees_everyone(connect, mesh):
    doctor = await connect(mesh.doctor, mesh.visit)
    assert (await doctor.receive())["role"] == "doctor"
    patient = await connect(mesh.patient, mesh.visit)
    assert (await patient.receive())["role"] == "patient"
    assert await doctor.receive() == mesh.patient.presence("joined")
    assert await patient.receive() == mesh.doctor.presence("here")

    clinician = await connect(mesh.first, mesh.visit)
    assert clinician.connected
    assert await clinician.receive() == {
        "type": "hello",
        "role": "clinician",
        "peer": mesh.first.peer,
        "status": "scheduled",
        "message": "",
        "started_at": None,
        "ended_at": None,
        "ice_servers": [],
        "ice_transport_policy": "all",
    }
    # The clinician sees the doctor and the patient, by peer and name...
    heard = ordered(await clinician.receive_many(2))
    assert heard == ordered([mesh.doctor.presence("here"), mesh.patient.presence("here")])
    assert {m["name"] for m in heard} == {"Dr. Anna Rossi", "Paolo Esposito"}
    # ...and they see the clinician.
    joined = {
        "type": "presence",
        "role": "clinician",
        "peer": mesh.first.peer,
        "name": "Dr. Marco Bianchi",
        "state": "joined",
    }
    assert await doctor.receive() == joined
    assert await patient.receive() == joined
    for socket in (doctor, patient, clinician):
        assert await socket.nothing()


async def test_the_second_clinician_sees_the_first_and_is_seen(gather, mesh):
    doctor, patient, first, second = await gather(
        mesh.doctor, mesh.patient, mesh.first, mesh.second
    )
    assert mesh.first.peer != mesh.second.peer
    assert {first.role, second.role} == {"clinician"}


async def test_a_clinician_may_arrive_first_and_hears_the_others_join(gather, mesh):
    await gather(mesh.first, mesh.patient, mesh.doctor)


# --- addressing ----------------------------------------------------------------------------


async def test_an_addressed_offer_reaches_only_its_recipient(gather, mesh):
    doctor, patient, first, second = await gather(
        mesh.doctor, mesh.patient, mesh.first, mesh.second
    )
    await admit([doctor, patient, first, second])

    await doctor.send({"type": "offer", "sdp": SDP, "to": first.peer})
    assert await first.receive() == {"type": "offer", "sdp": SDP, "from": mesh.doctor.peer}
    for socket in (doctor, patient, second):
        assert await socket.nothing()

    await first.send({"type": "answer", "sdp": SDP, "to": doctor.peer})
    assert await doctor.receive() == {"type": "answer", "sdp": SDP, "from": mesh.first.peer}
    await first.send({"type": "ice", "candidate": CANDIDATE, "to": doctor.peer})
    assert await doctor.receive() == {"type": "ice", "candidate": CANDIDATE, "from": first.peer}
    for socket in (first, patient, second):
        assert await socket.nothing()


async def test_a_message_to_nobody_in_particular_reaches_everyone_else(gather, mesh):
    doctor, patient, first, second = await gather(
        mesh.doctor, mesh.patient, mesh.first, mesh.second
    )
    await admit([doctor, patient, first, second])
    await patient.send({"type": "media", "audio": False, "video": True})
    expected = {"type": "media", "audio": False, "video": True, "from": mesh.patient.peer}
    for socket in (doctor, first, second):
        assert await socket.receive() == expected
    assert await patient.nothing()


async def test_a_message_to_someone_not_in_the_room_reaches_nobody(gather, mesh):
    doctor, patient, first = await gather(mesh.doctor, mesh.patient, mesh.first)
    await admit([doctor, patient, first])
    await doctor.send({"type": "offer", "sdp": SDP, "to": mesh.second.peer})
    for socket in (doctor, patient, first):
        assert await socket.nothing()


@pytest.mark.parametrize("addressed", [True, False])
async def test_nobody_can_speak_for_someone_else(gather, mesh, addressed):
    doctor, patient, first = await gather(mesh.doctor, mesh.patient, mesh.first)
    await admit([doctor, patient, first])
    forged = {"type": "ice", "candidate": CANDIDATE, "from": mesh.doctor.peer}
    if addressed:
        forged["to"] = patient.peer
    await first.send(forged)
    expected = {"type": "ice", "candidate": CANDIDATE, "from": mesh.first.peer}
    assert await patient.receive() == expected
    if addressed:
        assert await doctor.nothing()
    else:
        assert await doctor.receive() == expected


async def test_a_malformed_recipient_is_refused(gather, mesh):
    doctor, patient, first = await gather(mesh.doctor, mesh.patient, mesh.first)
    await admit([doctor, patient, first])
    for to in (7, "", "d" * 65, ["p1"]):
        await doctor.send({"type": "offer", "sdp": SDP, "to": to})
        error = await doctor.receive()
        assert (error["type"], error["code"]) == ("error", "malformed")
    for socket in (patient, first):
        assert await socket.nothing()


# --- what a clinician may do ----------------------------------------------------------------


async def test_a_clinician_offers_and_answers(gather, mesh):
    doctor, patient, first, second = await gather(
        mesh.doctor, mesh.patient, mesh.first, mesh.second
    )
    await admit([doctor, patient, first, second])
    await first.send({"type": "offer", "sdp": SDP, "to": patient.peer})
    assert await patient.receive() == {"type": "offer", "sdp": SDP, "from": first.peer}
    await patient.send({"type": "answer", "sdp": SDP, "to": first.peer})
    assert await first.receive() == {"type": "answer", "sdp": SDP, "from": patient.peer}
    await second.send({"type": "answer", "sdp": SDP, "to": first.peer})
    assert await first.receive() == {"type": "answer", "sdp": SDP, "from": second.peer}
    for socket in (doctor, patient, first, second):
        assert await socket.nothing()


@pytest.mark.parametrize(
    "message",
    [{"type": "admit"}, {"type": "end"}, {"type": "notice", "text": "Sono in ritardo."}],
    ids=["admit", "end", "notice"],
)
async def test_a_clinician_cannot_admit_end_or_write_to_the_waiting_patient(gather, mesh, message):
    doctor, patient, first = await gather(mesh.doctor, mesh.patient, mesh.first)
    await patient.send({"type": "ready"})
    for socket in (doctor, patient, first):
        assert (await socket.receive())["status"] == "waiting"
    await first.send(message)
    error = await first.receive()
    assert (error["type"], error["code"]) == ("error", "forbidden")
    assert await doctor.nothing()
    assert await patient.nothing()
    stored = await fetch(mesh.visit)
    assert stored.status == Visit.Status.WAITING
    assert stored.waiting_message == ""


async def test_a_clinician_cannot_end_the_call(gather, mesh):
    doctor, patient, first = await gather(mesh.doctor, mesh.patient, mesh.first)
    await admit([doctor, patient, first])
    await first.send({"type": "end"})
    assert (await first.receive())["code"] == "forbidden"
    assert (await fetch(mesh.visit)).status == Visit.Status.IN_CALL


async def test_a_clinician_cannot_say_ready_for_the_patient(gather, mesh):
    doctor, patient, first = await gather(mesh.doctor, mesh.patient, mesh.first)
    await first.send({"type": "ready"})
    assert (await first.receive())["code"] == "forbidden"
    assert (await fetch(mesh.visit)).status == Visit.Status.SCHEDULED


async def test_a_patient_cannot_offer_to_a_clinician(gather, mesh):
    doctor, patient, first = await gather(mesh.doctor, mesh.patient, mesh.first)
    await admit([doctor, patient, first])
    await patient.send({"type": "offer", "sdp": SDP, "to": first.peer})
    error = await patient.receive()
    assert (error["type"], error["code"]) == ("error", "forbidden")
    assert await first.nothing()
    assert await doctor.nothing()


async def test_nothing_is_relayed_before_admission_for_clinicians_either(gather, mesh):
    doctor, patient, first, second = await gather(
        mesh.doctor, mesh.patient, mesh.first, mesh.second
    )
    await patient.send({"type": "ready"})
    for socket in (doctor, patient, first, second):
        assert (await socket.receive())["status"] == "waiting"
    for sender, message in [
        (first, {"type": "offer", "sdp": SDP, "to": patient.peer}),
        (first, {"type": "offer", "sdp": SDP, "to": second.peer}),
        (first, {"type": "ice", "candidate": CANDIDATE}),
        (second, {"type": "answer", "sdp": SDP, "to": first.peer}),
        (doctor, {"type": "offer", "sdp": SDP, "to": first.peer}),
    ]:
        await sender.send(message)
        error = await sender.receive()
        assert (error["type"], error["code"]) == ("error", "not_in_call"), message
    for socket in (doctor, patient, first, second):
        assert await socket.nothing()


# A call between the visit's doctor and a clinician whose `peer` sorts first: by the
# protocol the clinician offers and the visit's doctor answers.
async def test_the_visits_doctor_answers_a_clinician_whose_peer_sorts_first(
    connect, cast, video_kind
):
    # The visit's doctor is whichever of the two sorts last; the other is on the booking.
    low, high = sorted([cast.doctor, cast.doctor2], key=lambda s: f"d{s.pk}")
    patient = cast.patient if high == cast.doctor else cast.patient_of_doctor2
    booking = await database_sync_to_async(book)(
        cast, video_kind, [low], by=high, clinician=high, patient=patient
    )
    visit = booking.visit
    doctor = await connect(staff_who(high, "doctor"), visit)
    clinician = await connect(staff_who(low), visit)
    pat = await connect(Who(patient.user, f"p{patient.pk}", "patient", patient.full_name), visit)
    for socket in (doctor, clinician, pat):
        await socket.receive()  # hello
    await doctor.receive_many(2)
    await clinician.receive_many(2)
    await pat.receive_many(2)
    await admit([doctor, pat, clinician])
    assert clinician.peer < doctor.peer
    await clinician.send({"type": "offer", "sdp": SDP, "to": doctor.peer})
    assert await doctor.receive() == {"type": "offer", "sdp": SDP, "from": clinician.peer}
    await doctor.send({"type": "answer", "sdp": SDP, "to": clinician.peer})
    assert await doctor.nothing()  # today: {"type": "error", "code": "forbidden", ...}
    assert await clinician.receive() == {"type": "answer", "sdp": SDP, "from": doctor.peer}


# --- leaving and ending -------------------------------------------------------------------


@pytest.mark.parametrize("code", [1000, 1005])
async def test_a_clinician_leaving_is_seen_and_the_visit_goes_on(gather, mesh, code):
    doctor, patient, first, second = await gather(
        mesh.doctor, mesh.patient, mesh.first, mesh.second
    )
    await admit([doctor, patient, first, second])
    await first.leave(code)
    for socket in (doctor, patient, second):
        assert await socket.receive() == mesh.first.presence("left")
        assert await socket.nothing()
    assert (await fetch(mesh.visit)).status == Visit.Status.IN_CALL
    # The rest of the call carries on.
    await doctor.send({"type": "offer", "sdp": SDP, "to": patient.peer})
    assert await patient.receive() == {"type": "offer", "sdp": SDP, "from": doctor.peer}
    await second.send({"type": "media", "audio": True, "video": False})
    for socket in (doctor, patient):
        assert (await socket.receive())["from"] == second.peer


@pytest.mark.parametrize("code", [1006, 1001])  # the network lost; the page reloaded
async def test_a_clinician_who_may_come_back_has_dropped(gather, mesh, code):
    doctor, patient, first = await gather(mesh.doctor, mesh.patient, mesh.first)
    await admit([doctor, patient, first])
    await first.leave(code)
    for socket in (doctor, patient):
        assert await socket.receive() == mesh.first.presence("dropped")


async def test_a_clinician_comes_back_into_the_call(connect, gather, mesh):
    doctor, patient, first = await gather(mesh.doctor, mesh.patient, mesh.first)
    await admit([doctor, patient, first])
    await first.leave()
    for socket in (doctor, patient):
        assert await socket.receive() == mesh.first.presence("left")
    again = await connect(mesh.first, mesh.visit)
    hello = await again.receive()
    assert (hello["role"], hello["status"]) == ("clinician", "in_call")
    assert ordered(await again.receive_many(2)) == ordered(
        [mesh.doctor.presence("here"), mesh.patient.presence("here")]
    )
    for socket in (doctor, patient):
        assert await socket.receive() == mesh.first.presence("joined")
    # The newly arrived clinician is in the call at once: relays flow both ways.
    await doctor.send({"type": "offer", "sdp": SDP, "to": again.peer})
    assert (await again.receive())["from"] == doctor.peer


async def test_the_doctors_end_closes_every_socket(gather, mesh, cast):
    doctor, patient, first, second = await gather(
        mesh.doctor, mesh.patient, mesh.first, mesh.second
    )
    await admit([doctor, patient, first, second])
    await doctor.send({"type": "end"})
    for socket in (doctor, patient, first, second):
        state = await socket.receive()
        assert (state["type"], state["status"]) == ("state", "ended")
    for socket in (doctor, patient, first, second):
        await socket.receive_close()
    stored = await fetch(mesh.visit)
    assert stored.status == Visit.Status.ENDED
    assert stored.ended_by_id == cast.doctor.user_id


# --- the mesh limit and who may not join -----------------------------------------------------


async def test_a_third_other_doctor_is_told_the_call_is_full(connect, gather, mesh):
    assert settings.VISIT_MAX_PARTICIPANTS == 4
    await database_sync_to_async(add_hold)(mesh.booking, mesh.spare)
    sockets = await gather(mesh.doctor, mesh.patient, mesh.first, mesh.second)
    await admit(sockets)

    spare = await connect(staff_who(mesh.spare), mesh.visit, language="it")
    assert spare.connected  # accepted, to say why in words
    error = await spare.receive()
    assert (error["type"], error["code"]) == ("error", "full")
    assert "ha già 4 partecipanti" in error["message"]  # in the page's language
    assert (await spare.receive_close())["code"] == 4409
    for socket in sockets:
        assert await socket.nothing()


async def test_a_full_call_refuses_the_third_other_doctor_even_if_others_are_away(connect, mesh):
    """Seats go by the booking's order, not by who arrived first."""
    await database_sync_to_async(add_hold)(mesh.booking, mesh.spare)
    doctor = await connect(mesh.doctor, mesh.visit)
    await doctor.receive()
    spare = await connect(staff_who(mesh.spare), mesh.visit)
    assert (await spare.receive())["code"] == "full"
    assert (await spare.receive_close())["code"] == 4409
    assert await doctor.nothing()


def test_seats_go_to_the_first_two_other_doctors_on_the_booking(cast, mesh):
    add_hold(mesh.booking, mesh.spare)
    assert extra_clinician_ids(mesh.visit) == [cast.doctor2.pk, mesh.second.pk, mesh.spare.pk]
    assert has_seat(mesh.visit, cast.doctor2.pk)
    assert has_seat(mesh.visit, mesh.second.pk)
    assert not has_seat(mesh.visit, mesh.spare.pk)
    assert participant_role(mesh.spare.user, mesh.visit) == "clinician"


async def test_a_doctor_of_the_clinic_not_on_the_booking_is_refused(connect, mesh):
    for staff in (mesh.outsider, mesh.spare):
        socket = await connect(staff_who(staff), mesh.visit)
        assert not socket.connected
        assert socket.code == 4403


async def test_a_doctor_whose_hold_is_inactive_is_refused(connect, mesh, cast):
    await database_sync_to_async(
        lambda: BookingHold.objects.filter(booking=mesh.booking, clinician=cast.doctor2).update(
            active=False
        )
    )()
    socket = await connect(mesh.first, mesh.visit)
    assert not socket.connected
    assert socket.code == 4403
    still = await connect(mesh.second, mesh.visit)
    assert still.connected


async def test_the_other_doctors_of_a_cancelled_booking_are_refused(connect, mesh, cast):
    await database_sync_to_async(scheduling.booking_cancel)(booking=mesh.booking, by=cast.doctor)
    assert not await database_sync_to_async(
        BookingHold.objects.filter(booking=mesh.booking, active=True).exists
    )()
    for who in (mesh.first, mesh.second):
        socket = await connect(who, mesh.visit)
        assert not socket.connected
        assert socket.code == 4403


def test_roles_of_everyone_around_the_visit(cast, mesh):
    visit = mesh.visit
    assert participant_role(cast.doctor.user, visit) == "doctor"
    assert participant_role(cast.patient.user, visit) == "patient"
    assert participant_role(cast.doctor2.user, visit) == "clinician"
    assert participant_role(mesh.second.user, visit) == "clinician"
    for nobody in (
        mesh.outsider.user,
        mesh.spare.user,
        cast.secretary.user,
        cast.other_doctor.user,
    ):
        assert participant_role(nobody, visit) is None


# --- lists and pages ------------------------------------------------------------------------


def test_the_clinicians_visits_include_the_visit(cast, mesh):
    assert mesh.visit in visits_for_staff(cast.doctor2)
    assert mesh.visit in visits_for_staff(StaffMember.objects.get(user=mesh.second.user))
    assert mesh.visit not in visits_for_staff(mesh.outsider)
    assert mesh.visit not in visits_for_staff(mesh.spare)
    # Once no longer on it, no longer listed.
    BookingHold.objects.filter(booking=mesh.booking, clinician=cast.doctor2).update(active=False)
    assert mesh.visit not in visits_for_staff(cast.doctor2)
    assert list(visits_for_staff(cast.doctor)) == [mesh.visit]


def test_the_visit_list_shows_the_visit_to_the_clinician(client, login, cast, mesh):
    login(cast.doctor2)
    response = client.get(reverse("visit_list"))
    assert response.status_code == 200
    assert response.context["upcoming"] == [mesh.visit]
    html = response.content.decode()
    assert reverse("visit_room", args=[mesh.visit.pk]) in html
    assert "Paolo Esposito" in html
    login(mesh.outsider)
    assert client.get(reverse("visit_list")).context["upcoming"] == []


def test_the_room_page_renders_for_the_clinician(client, login, cast, mesh):
    login(cast.doctor2)
    response = client.get(reverse("visit_room", args=[mesh.visit.pk]))
    assert response.status_code == 200
    assert response.context["role"] == "clinician"
    assert response.context["config"]["role"] == "clinician"
    html = response.content.decode()
    assert 'id="leave-button"' in html and ">Leave<" in html
    assert 'id="admit-button"' not in html and ">Admit<" not in html
    assert 'id="end-button"' not in html and "End visit" not in html
    assert 'id="notice-form"' not in html
    assert "Video visit with Paolo Esposito" in html


def test_the_doctors_see_the_patients_link_and_the_booking_the_patient_does_not(
    client, login, cast, mesh
):
    for doctor in (cast.doctor, cast.doctor2):
        login(doctor)
        response = client.get(reverse("visit_room", args=[mesh.visit.pk]))
        html = response.content.decode()
        assert response.context["patient_link"].endswith(
            reverse("visit_room", args=[mesh.visit.pk])
        )
        assert 'id="patient-link"' in html
        assert response.context["booking"] == mesh.booking
        assert mesh.booking.appointment_type.name in html
        assert reverse("booking_detail", args=[mesh.booking.pk]) in html
    login(cast.patient)
    html = client.get(reverse("visit_room", args=[mesh.visit.pk])).content.decode()
    assert 'id="patient-link"' not in html and 'id="visit-booking"' not in html


def test_a_visit_without_a_booking_says_so_to_the_doctor(client, login, visit):
    login(visit.doctor)
    response = client.get(reverse("visit_room", args=[visit.pk]))
    assert response.context["booking"] is None
    assert "This visit was not booked in the calendar." in response.content.decode()


@pytest.mark.parametrize("who", ["outsider", "spare"])
def test_the_room_page_is_not_found_for_doctors_not_on_the_booking(client, login, mesh, who):
    login(getattr(mesh, who))
    assert client.get(reverse("visit_room", args=[mesh.visit.pk])).status_code == 404


# --- the booking limit ---------------------------------------------------------------------


@pytest.fixture
def four_doctors(cast):
    return [
        cast.doctor2,
        group_doctor(cast, "doctor3@alfa.test", "Lucia", "Ferri"),
        group_doctor(cast, "doctor4@alfa.test", "Pietro", "Gallo"),
    ]


def test_a_video_booking_takes_at_most_two_other_doctors(cast, video_kind, four_doctors):
    with refused("participants") as info:
        book(cast, video_kind, four_doctors)
    assert "at most 4 people" in str(info.value.message)
    assert not Booking.objects.exists()
    assert not Visit.objects.exists()


def test_a_video_booking_with_two_other_doctors_has_its_visit(cast, video_kind, four_doctors):
    booking = book(cast, video_kind, four_doctors[:2])
    assert booking.visit is not None
    assert booking.visit.doctor == cast.doctor
    assert extra_clinician_ids(booking.visit) == [d.pk for d in four_doctors[:2]]
    assert BookingHold.objects.filter(booking=booking, active=True).count() == 3


def test_an_in_person_booking_may_take_three_other_doctors(cast, video_kind, four_doctors):
    booking = book(cast, video_kind, four_doctors, contact_mode=ContactMode.IN_PERSON)
    assert booking.visit is None
    assert booking.contact_mode == ContactMode.IN_PERSON
    assert BookingHold.objects.filter(booking=booking, active=True).count() == 4


def test_an_in_person_booking_with_three_other_doctors_cannot_become_video(
    cast, video_kind, four_doctors
):
    booking = book(cast, video_kind, four_doctors, contact_mode=ContactMode.IN_PERSON)
    with refused("participants"):
        scheduling.booking_change(by=cast.doctor, booking=booking, contact_mode=ContactMode.VIDEO)
    assert not Visit.objects.exists()
