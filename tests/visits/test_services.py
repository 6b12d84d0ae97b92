"""Visit transitions: who may do what, what is written, and which events go out after commit."""

import asyncio
import json
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core import mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from consulta.accounts.models import CareTeam, StaffMember
from consulta.lib.errors import DomainError
from consulta.visits import services
from consulta.visits.models import Visit
from tests.conftest import make_patient, make_staff

pytestmark = pytest.mark.django_db


class RecordingLayer:
    """Stands in for the channel layer: remembers every group_send."""

    def __init__(self):
        self.sent: list[tuple[str, dict]] = []

    async def group_send(self, group, message):
        self.sent.append((group, message))


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, dict]]:
    layer = RecordingLayer()
    monkeypatch.setattr("consulta.lib.realtime.get_channel_layer", lambda: layer)
    return layer.sent


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    """Run the on-commit callbacks of the block, as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def row(visit) -> dict:
    return Visit.objects.filter(pk=visit.pk).values().get()


def set_status(visit, status, **fields) -> Visit:
    now = timezone.now()
    if status in (Visit.Status.WAITING, Visit.Status.IN_CALL, Visit.Status.ENDED):
        fields.setdefault("ready_at", now)
    if status in (Visit.Status.IN_CALL,):
        fields.setdefault("started_at", now)
    if status == Visit.Status.ENDED:
        fields.setdefault("ended_at", now)
    Visit.objects.filter(pk=visit.pk).update(status=status, **fields)
    visit.refresh_from_db()
    return visit


def state_event(visit) -> tuple[str, dict]:
    visit.refresh_from_db()
    return (
        f"visit.{visit.pk}",
        {
            "type": "visit.state",
            "status": visit.status,
            "message": visit.waiting_message,
            "started_at": visit.started_at.isoformat() if visit.started_at else None,
            "ended_at": visit.ended_at.isoformat() if visit.ended_at else None,
        },
    )


def doorbell(clinic) -> tuple[str, dict]:
    return (f"clinic.{clinic.pk}.visits", {"type": "visits.changed"})


@pytest.fixture
def assert_refused(visit, published, capture):
    """`assert_refused(call, code)`: the call raises DomainError(code), leaves the visit's row
    as it was and publishes nothing."""

    def check(call, code):
        before = row(visit)
        with capture() as callbacks, pytest.raises(DomainError) as caught:
            call()
        assert caught.value.code == code
        assert str(caught.value.message)
        assert row(visit) == before
        assert callbacks == []
        assert published == []

    return check


# --- visit_create ------------------------------------------------------------------------


def test_doctor_creates_a_visit_for_now_and_it_is_announced_after_commit(cast, published, capture):
    before = timezone.now()
    with capture() as callbacks:
        visit = services.visit_create(by=cast.doctor, patient=cast.patient, scheduled_at=None)
        assert published == []  # nothing leaves before the commit
    assert len(callbacks) == 1  # both groups in one send after commit
    visit.refresh_from_db()
    assert visit.clinic_id == cast.clinic.pk
    assert visit.doctor_id == cast.doctor.pk
    assert visit.patient_id == cast.patient.pk
    assert visit.created_by_id == cast.doctor.user_id
    assert visit.status == Visit.Status.SCHEDULED
    assert before <= visit.scheduled_at <= timezone.now()
    assert published == [state_event(visit), doorbell(cast.clinic)]
    assert published[0][1]["status"] == "scheduled"


def test_doctor_creates_a_visit_for_later(cast, published, capture):
    when = timezone.now() + timedelta(days=2)
    with capture():
        visit = services.visit_create(by=cast.doctor, patient=cast.patient, scheduled_at=when)
    assert Visit.objects.get(pk=visit.pk).scheduled_at == when
    assert published == [state_event(visit), doorbell(cast.clinic)]


def test_visit_a_minute_in_the_past_is_tolerated(cast, published, capture):
    when = timezone.now() - timedelta(minutes=1)
    with capture():
        visit = services.visit_create(by=cast.doctor, patient=cast.patient, scheduled_at=when)
    assert Visit.objects.get(pk=visit.pk).scheduled_at == when


def test_visit_creation_emails_the_patient_a_link_to_the_room(cast, published, capture):
    with capture():
        visit = services.visit_create(by=cast.doctor, patient=cast.patient, scheduled_at=None)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [cast.patient.email]
    assert "Rossi" in message.subject
    assert "\n" not in message.subject
    assert settings.PUBLIC_URL + reverse("visit_room", args=[visit.pk]) in message.body


def test_patient_without_email_gets_no_email_but_the_visit_is_created(cast, published, capture):
    cast.patient.email = ""
    cast.patient.save(update_fields=["email"])
    with capture():
        visit = services.visit_create(by=cast.doctor, patient=cast.patient, scheduled_at=None)
    assert Visit.objects.filter(pk=visit.pk).exists()
    assert mail.outbox == []


def test_doctor_creates_a_visit_for_a_patient_of_the_same_group_practice(cast, published, capture):
    with capture():
        visit = services.visit_create(
            by=cast.doctor, patient=cast.patient_of_doctor2, scheduled_at=None
        )
    visit.refresh_from_db()
    assert visit.doctor_id == cast.doctor.pk
    assert visit.patient_id == cast.patient_of_doctor2.pk
    assert published == [state_event(visit), doorbell(cast.clinic)]
    assert [m.to for m in mail.outbox] == [[cast.patient_of_doctor2.email]]


def assert_create_refused(code, *, by, patient, scheduled_at, published, capture):
    visits_before = Visit.objects.count()
    with capture() as callbacks, pytest.raises(DomainError) as caught:
        services.visit_create(by=by, patient=patient, scheduled_at=scheduled_at)
    assert caught.value.code == code
    assert str(caught.value.message)
    assert Visit.objects.count() == visits_before
    assert callbacks == []
    assert published == []
    assert mail.outbox == []


@pytest.mark.parametrize("who", ["secretary", "clinic_admin"])
def test_staff_who_are_not_doctors_cannot_create_a_visit(cast, published, capture, who):
    assert_create_refused(
        "forbidden",
        by=getattr(cast, who),
        patient=cast.patient,
        scheduled_at=None,
        published=published,
        capture=capture,
    )


def test_doctor_cannot_create_a_visit_for_a_patient_of_another_clinic(cast, published, capture):
    assert_create_refused(
        "forbidden",
        by=cast.doctor,
        patient=cast.other_patient,
        scheduled_at=None,
        published=published,
        capture=capture,
    )


def test_doctor_of_another_clinic_cannot_create_a_visit_for_our_patient(cast, published, capture):
    assert_create_refused(
        "forbidden",
        by=cast.other_doctor,
        patient=cast.patient,
        scheduled_at=None,
        published=published,
        capture=capture,
    )


def test_doctor_creates_a_visit_for_a_patient_of_a_network_colleague(cast, published, capture):
    # Doctors of a network (medicina di rete) cover for each other: they see the patients.
    colleague = make_staff(cast.clinic, "network@alfa.test", StaffMember.Role.DOCTOR)
    team = CareTeam.objects.create(clinic=cast.clinic, name="Rete Alfa", kind=CareTeam.Kind.NETWORK)
    team.members.add(cast.doctor, colleague)
    theirs = make_patient(cast.clinic, colleague, "rete@patients.test", "Rita", "Neri")
    with capture():
        visit = services.visit_create(by=cast.doctor, patient=theirs, scheduled_at=None)
    assert visit.patient == theirs


def test_doctor_outside_the_group_practice_cannot_create_a_visit_for_its_patients(
    cast, published, capture
):
    loner = make_staff(cast.clinic, "loner@alfa.test", StaffMember.Role.DOCTOR)
    assert_create_refused(
        "forbidden",
        by=loner,
        patient=cast.patient,
        scheduled_at=None,
        published=published,
        capture=capture,
    )


@pytest.mark.parametrize("ago", [timedelta(minutes=6), timedelta(hours=1), timedelta(days=30)])
def test_visit_time_in_the_past_is_refused(cast, published, capture, ago):
    assert_create_refused(
        "past",
        by=cast.doctor,
        patient=cast.patient,
        scheduled_at=timezone.now() - ago,
        published=published,
        capture=capture,
    )


def test_naive_visit_time_is_refused(cast, published, capture):
    assert_create_refused(
        "naive_time",
        by=cast.doctor,
        patient=cast.patient,
        scheduled_at=datetime.now() + timedelta(days=1),  # naive on purpose
        published=published,
        capture=capture,
    )


# --- visit_mark_ready --------------------------------------------------------------------


def test_patient_marks_ready_and_both_groups_hear_of_it(cast, visit, published, capture):
    with capture() as callbacks:
        returned = services.visit_mark_ready(visit_id=visit.pk, user=cast.patient.user)
        assert published == []
    assert len(callbacks) == 1  # both groups in one send after commit
    assert returned.status == Visit.Status.WAITING
    visit.refresh_from_db()
    assert visit.status == Visit.Status.WAITING
    assert visit.ready_at is not None
    assert visit.started_at is None
    assert published == [
        (
            f"visit.{visit.pk}",
            {
                "type": "visit.state",
                "status": "waiting",
                "message": "",
                "started_at": None,
                "ended_at": None,
            },
        ),
        (f"clinic.{cast.clinic.pk}.visits", {"type": "visits.changed"}),
    ]


def test_marking_ready_twice_changes_and_publishes_nothing(cast, visit, published, capture):
    set_status(visit, Visit.Status.WAITING)
    before = row(visit)
    with capture() as callbacks:
        services.visit_mark_ready(visit_id=visit.pk, user=cast.patient.user)
    assert row(visit) == before
    assert callbacks == []
    assert published == []


def test_marking_ready_during_the_call_changes_nothing(cast, visit, published, capture):
    set_status(visit, Visit.Status.IN_CALL)
    before = row(visit)
    with capture():
        returned = services.visit_mark_ready(visit_id=visit.pk, user=cast.patient.user)
    assert returned.status == Visit.Status.IN_CALL
    assert row(visit) == before
    assert published == []


@pytest.mark.parametrize("who", ["doctor", "doctor2", "secretary", "clinic_admin", "other_doctor"])
def test_staff_cannot_mark_ready_for_the_patient(cast, visit, assert_refused, who):
    user = getattr(cast, who).user
    assert_refused(
        lambda: services.visit_mark_ready(visit_id=visit.pk, user=user),
        "forbidden",
    )


@pytest.mark.parametrize("who", ["patient_of_doctor2", "other_patient"])
def test_another_patient_cannot_mark_ready(cast, visit, assert_refused, who):
    user = getattr(cast, who).user
    assert_refused(
        lambda: services.visit_mark_ready(visit_id=visit.pk, user=user),
        "forbidden",
    )


def test_operator_cannot_mark_ready(cast, visit, assert_refused):
    assert_refused(
        lambda: services.visit_mark_ready(visit_id=visit.pk, user=cast.operator),
        "forbidden",
    )


def test_patient_cannot_mark_an_ended_visit_ready(cast, visit, assert_refused):
    set_status(visit, Visit.Status.ENDED)
    assert_refused(
        lambda: services.visit_mark_ready(visit_id=visit.pk, user=cast.patient.user),
        "ended",
    )


def test_marking_ready_a_visit_that_does_not_exist_is_not_found(cast, visit, assert_refused):
    assert_refused(
        lambda: services.visit_mark_ready(visit_id=uuid.uuid4(), user=cast.patient.user),
        "not_found",
    )


# --- visit_leave_waiting -----------------------------------------------------------------


def test_patient_leaving_the_waiting_room_puts_the_visit_back_to_scheduled(
    cast, visit, published, capture
):
    set_status(visit, Visit.Status.WAITING)
    with capture():
        returned = services.visit_leave_waiting(visit_id=visit.pk, user=cast.patient.user)
    assert returned.status == Visit.Status.SCHEDULED
    visit.refresh_from_db()
    assert visit.status == Visit.Status.SCHEDULED
    assert visit.ready_at is None
    assert published == [
        (
            f"visit.{visit.pk}",
            {
                "type": "visit.state",
                "status": "scheduled",
                "message": "",
                "started_at": None,
                "ended_at": None,
            },
        ),
        doorbell(cast.clinic),
    ]


@pytest.mark.parametrize(
    "status", [Visit.Status.SCHEDULED, Visit.Status.IN_CALL, Visit.Status.ENDED]
)
def test_leaving_when_not_waiting_changes_nothing(cast, visit, published, capture, status):
    set_status(visit, status)
    before = row(visit)
    with capture() as callbacks:
        services.visit_leave_waiting(visit_id=visit.pk, user=cast.patient.user)
    assert row(visit) == before
    assert callbacks == []
    assert published == []


@pytest.mark.parametrize("who", ["doctor", "secretary", "patient_of_doctor2", "other_patient"])
def test_only_the_patient_can_take_the_visit_out_of_the_waiting_room(
    cast, visit, published, capture, who
):
    set_status(visit, Visit.Status.WAITING)
    before = row(visit)
    with capture() as callbacks:
        services.visit_leave_waiting(visit_id=visit.pk, user=getattr(cast, who).user)
    assert row(visit) == before
    assert callbacks == []
    assert published == []


# --- visit_admit -------------------------------------------------------------------------


def test_doctor_admits_the_waiting_patient(cast, visit, published, capture):
    set_status(visit, Visit.Status.WAITING)
    before = timezone.now()
    with capture() as callbacks:
        returned = services.visit_admit(visit_id=visit.pk, user=cast.doctor.user)
        assert published == []
    assert len(callbacks) == 1  # both groups in one send after commit
    assert returned.status == Visit.Status.IN_CALL
    visit.refresh_from_db()
    assert visit.status == Visit.Status.IN_CALL
    assert before <= visit.started_at <= timezone.now()
    assert visit.ended_at is None
    assert published == [
        (
            f"visit.{visit.pk}",
            {
                "type": "visit.state",
                "status": "in_call",
                "message": "",
                "started_at": visit.started_at.isoformat(),
                "ended_at": None,
            },
        ),
        doorbell(cast.clinic),
    ]


def test_readmitting_keeps_the_first_start_time(cast, visit, published, capture):
    first = timezone.now() - timedelta(minutes=10)
    set_status(visit, Visit.Status.WAITING, started_at=first)
    with capture():
        services.visit_admit(visit_id=visit.pk, user=cast.doctor.user)
    visit.refresh_from_db()
    assert visit.status == Visit.Status.IN_CALL
    assert visit.started_at == first


def test_admitting_during_the_call_changes_and_publishes_nothing(cast, visit, published, capture):
    set_status(visit, Visit.Status.IN_CALL)
    before = row(visit)
    with capture() as callbacks:
        services.visit_admit(visit_id=visit.pk, user=cast.doctor.user)
    assert row(visit) == before
    assert callbacks == []
    assert published == []


@pytest.mark.parametrize(
    "who", ["doctor2", "secretary", "clinic_admin", "other_doctor", "patient", "other_patient"]
)
def test_only_the_visits_doctor_can_admit(cast, visit, assert_refused, who):
    set_status(visit, Visit.Status.WAITING)
    user = getattr(cast, who).user
    assert_refused(
        lambda: services.visit_admit(visit_id=visit.pk, user=user),
        "forbidden",
    )


def test_operator_cannot_admit(cast, visit, assert_refused):
    set_status(visit, Visit.Status.WAITING)
    assert_refused(
        lambda: services.visit_admit(visit_id=visit.pk, user=cast.operator),
        "forbidden",
    )


def test_doctor_cannot_admit_a_patient_who_is_not_waiting(cast, visit, assert_refused):
    assert visit.status == Visit.Status.SCHEDULED
    assert_refused(
        lambda: services.visit_admit(visit_id=visit.pk, user=cast.doctor.user),
        "not_waiting",
    )


def test_doctor_cannot_admit_into_an_ended_visit(cast, visit, assert_refused):
    set_status(visit, Visit.Status.ENDED)
    assert_refused(
        lambda: services.visit_admit(visit_id=visit.pk, user=cast.doctor.user),
        "ended",
    )


def test_admitting_into_a_visit_that_does_not_exist_is_not_found(cast, visit, assert_refused):
    assert_refused(
        lambda: services.visit_admit(visit_id=uuid.uuid4(), user=cast.doctor.user),
        "not_found",
    )


# --- visit_end ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Visit.Status.SCHEDULED, Visit.Status.WAITING])
def test_doctor_ends_a_visit_that_never_started(cast, visit, published, capture, status):
    set_status(visit, status)
    with capture():
        services.visit_end(visit_id=visit.pk, user=cast.doctor.user)
    visit.refresh_from_db()
    assert visit.status == Visit.Status.ENDED
    assert visit.ended_at is not None
    assert visit.started_at is None
    assert visit.ended_by_id == cast.doctor.user_id
    assert published == [state_event(visit), doorbell(cast.clinic)]


def test_doctor_ends_the_call(cast, visit, published, capture):
    set_status(visit, Visit.Status.IN_CALL, started_at=timezone.now() - timedelta(minutes=20))
    before = timezone.now()
    with capture() as callbacks:
        returned = services.visit_end(visit_id=visit.pk, user=cast.doctor.user)
        assert published == []
    assert len(callbacks) == 1  # both groups in one send after commit
    assert returned.status == Visit.Status.ENDED
    visit.refresh_from_db()
    assert visit.status == Visit.Status.ENDED
    assert before <= visit.ended_at <= timezone.now()
    assert visit.ended_at >= visit.started_at
    assert visit.ended_by_id == cast.doctor.user_id
    assert published == [
        (
            f"visit.{visit.pk}",
            {
                "type": "visit.state",
                "status": "ended",
                "message": "",
                "started_at": visit.started_at.isoformat(),
                "ended_at": visit.ended_at.isoformat(),
            },
        ),
        doorbell(cast.clinic),
    ]


def test_ending_twice_keeps_the_first_end_and_publishes_once(cast, visit, published, capture):
    set_status(visit, Visit.Status.IN_CALL)
    with capture():
        services.visit_end(visit_id=visit.pk, user=cast.doctor.user)
    first = row(visit)
    assert len(published) == 2
    with capture() as callbacks:
        returned = services.visit_end(visit_id=visit.pk, user=cast.doctor.user)
    assert returned.status == Visit.Status.ENDED
    assert row(visit) == first
    assert callbacks == []
    assert len(published) == 2


@pytest.mark.parametrize(
    "who", ["patient", "doctor2", "secretary", "clinic_admin", "other_doctor", "other_patient"]
)
def test_only_the_visits_doctor_can_end_it(cast, visit, assert_refused, who):
    set_status(visit, Visit.Status.IN_CALL)
    user = getattr(cast, who).user
    assert_refused(
        lambda: services.visit_end(visit_id=visit.pk, user=user),
        "forbidden",
    )


def test_ending_a_visit_that_does_not_exist_is_not_found(cast, visit, assert_refused):
    assert_refused(
        lambda: services.visit_end(visit_id=uuid.uuid4(), user=cast.doctor.user),
        "not_found",
    )


# --- the real channel layer --------------------------------------------------------------


async def receive(layer, channel):
    return await asyncio.wait_for(layer.receive(channel), timeout=3)


def test_published_state_reaches_a_channel_in_the_visit_group(cast, visit, capture):
    """Through the configured layer (in memory, or Redis when REDIS_URL is set)."""
    layer = get_channel_layer()
    listener = f"listener.{uuid.uuid4().hex}"
    dashboard = f"listener.{uuid.uuid4().hex}"
    async_to_sync(layer.group_add)(f"visit.{visit.pk}", listener)
    async_to_sync(layer.group_add)(f"clinic.{cast.clinic.pk}.visits", dashboard)
    try:
        with capture():
            services.visit_mark_ready(visit_id=visit.pk, user=cast.patient.user)
        state = async_to_sync(receive)(layer, listener)
        bell = async_to_sync(receive)(layer, dashboard)
    finally:
        async_to_sync(layer.group_discard)(f"visit.{visit.pk}", listener)
        async_to_sync(layer.group_discard)(f"clinic.{cast.clinic.pk}.visits", dashboard)
    assert state == {
        "type": "visit.state",
        "status": "waiting",
        "message": "",
        "started_at": None,
        "ended_at": None,
    }
    assert bell == {"type": "visits.changed"}


def test_nothing_is_published_when_the_transaction_rolls_back(cast, visit, published, capture):
    with capture() as callbacks, pytest.raises(RuntimeError), transaction.atomic():
        services.visit_mark_ready(visit_id=visit.pk, user=cast.patient.user)
        raise RuntimeError("the surrounding request failed")
    assert callbacks == []
    assert published == []
    assert Visit.objects.get(pk=visit.pk).status == Visit.Status.SCHEDULED


# --- the join window and the waiting-room message -------------------------------------------


def _reschedule(visit, **delta) -> Visit:
    Visit.objects.filter(pk=visit.pk).update(scheduled_at=timezone.now() + timedelta(**delta))
    return Visit.objects.get(pk=visit.pk)


def test_patient_cannot_be_ready_before_the_join_window_opens(cast, visit, assert_refused):
    _reschedule(visit, minutes=30)  # the clinic's window opens 10 minutes before
    assert_refused(
        lambda: services.visit_mark_ready(visit_id=visit.pk, user=cast.patient.user), "too_early"
    )


def test_patient_can_be_ready_from_ten_minutes_before(cast, visit):
    _reschedule(visit, minutes=9)
    ready = services.visit_mark_ready(visit_id=visit.pk, user=cast.patient.user)
    assert ready.status == Visit.Status.WAITING


def test_patient_cannot_be_ready_two_hours_after_the_visits_time(cast, visit, assert_refused):
    _reschedule(visit, minutes=-121)
    assert_refused(
        lambda: services.visit_mark_ready(visit_id=visit.pk, user=cast.patient.user), "too_late"
    )


def test_the_join_window_is_the_clinics_setting(cast, visit):
    cast.clinic.join_minutes_before = 60
    cast.clinic.save(update_fields=["join_minutes_before"])
    _reschedule(visit, minutes=45)
    ready = services.visit_mark_ready(visit_id=visit.pk, user=cast.patient.user)
    assert ready.status == Visit.Status.WAITING


def test_the_too_early_message_says_when_the_room_opens(cast, visit):
    visit = _reschedule(visit, hours=3)
    refusal = services.join_refusal(visit)
    opens, _closes = services.join_window(visit)
    assert refusal.code == "too_early"
    assert timezone.localtime(opens, ZoneInfo("Europe/Rome")).strftime("%H:%M") in str(
        refusal.message
    )


def test_doctor_leaves_a_message_in_the_waiting_room(cast, visit, published, capture):
    with capture():
        services.visit_send_waiting_message(
            visit_id=visit.pk, user=cast.doctor.user, text="  Running   10 minutes late. "
        )
    visit.refresh_from_db()
    assert visit.waiting_message == "Running 10 minutes late."
    assert published[0][1]["message"] == "Running 10 minutes late."


@pytest.mark.parametrize("who", ["patient", "doctor2", "secretary"])
def test_only_the_visits_doctor_writes_to_the_waiting_room(cast, visit, assert_refused, who):
    user = getattr(cast, who).user
    assert_refused(
        lambda: services.visit_send_waiting_message(visit_id=visit.pk, user=user, text="Hi"),
        "forbidden",
    )


def test_a_waiting_room_message_over_300_characters_is_refused(cast, visit, assert_refused):
    assert_refused(
        lambda: services.visit_send_waiting_message(
            visit_id=visit.pk, user=cast.doctor.user, text="x" * 301
        ),
        "too_long",
    )


# --- per-patient room settings and "your doctor is in the room" -----------------------------


def test_a_doctor_sets_a_patients_room_settings_and_it_is_audited(cast):
    from consulta.audit.models import AuditEvent

    saved = services.room_settings_save(
        by=cast.doctor,
        patient=cast.patient,
        shows_self_view=False,
        shows_elapsed_time=False,
        notify_when_doctor_enters=True,
        notify_text="Il dottore è pronto.",
        notify_by_email=True,
        notify_by_sms=True,
    )
    assert services.room_settings_of(cast.patient) == saved
    assert not saved.shows_self_view
    assert AuditEvent.objects.filter(action="patient.room_settings", patient=cast.patient).exists()


@pytest.mark.parametrize("who", ["secretary", "clinic_admin", "other_doctor"])
def test_only_the_patients_doctors_set_room_settings(cast, who):
    with pytest.raises(DomainError) as refused:
        services.room_settings_save(
            by=getattr(cast, who), patient=cast.patient, shows_self_view=False
        )
    assert refused.value.code == "forbidden"


def test_a_notice_needs_email_or_text_message(cast):
    with pytest.raises(DomainError) as refused:
        services.room_settings_save(
            by=cast.doctor,
            patient=cast.patient,
            notify_when_doctor_enters=True,
            notify_by_email=False,
            notify_by_sms=False,
        )
    assert refused.value.code == "no_channel"


def test_the_patient_is_told_once_when_the_doctor_enters(
    cast, visit, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.SMS_BACKEND = "consulta.notifications.sms.FileBackend"
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")
    cast.patient.phone = "+393331234567"
    cast.patient.save(update_fields=["phone"])
    services.room_settings_save(
        by=cast.doctor,
        patient=cast.patient,
        notify_when_doctor_enters=True,
        notify_text="Il dottore è pronto.",
        notify_by_email=True,
        notify_by_sms=True,
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.visit_doctor_entered(visit_id=visit.pk, user=cast.doctor.user)
    with django_capture_on_commit_callbacks(execute=True):
        services.visit_doctor_entered(visit_id=visit.pk, user=cast.doctor.user)  # a reload
    (message,) = mail.outbox
    assert message.body.startswith("Il dottore è pronto.")
    assert reverse("visit_room", args=[visit.pk]) in message.body
    sent = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text().splitlines()]
    assert [m["to"] for m in sent] == ["+393331234567"]
    assert sent[0]["body"].startswith("Il dottore è pronto.")


def test_without_the_setting_nobody_is_told(cast, visit):
    mail.outbox.clear()
    services.visit_doctor_entered(visit_id=visit.pk, user=cast.doctor.user)
    assert mail.outbox == []
    visit.refresh_from_db()
    assert visit.doctor_entered_at is not None


def test_a_doctor_admits_one_patient_at_a_time(cast, visit, assert_refused):
    other = Visit.objects.create(
        clinic=cast.clinic,
        patient=cast.patient_of_doctor2,
        doctor=cast.doctor,
        scheduled_at=timezone.now(),
        created_by=cast.doctor.user,
        status=Visit.Status.IN_CALL,
        started_at=timezone.now(),
    )
    set_status(visit, Visit.Status.WAITING)
    with pytest.raises(DomainError) as refusal:
        services.visit_admit(visit_id=visit.pk, user=cast.doctor.user)
    assert refusal.value.code == "busy"
    # The call left open (its tab closed without End): the doctor's page links to it.
    assert refusal.value.extra == {"visit_url": reverse("visit_room", args=[other.pk])}
    services.visit_end(visit_id=other.pk, user=cast.doctor.user)
    assert services.visit_admit(visit_id=visit.pk, user=cast.doctor.user).status == "in_call"


def test_a_call_left_open_for_a_day_does_not_block_admissions(cast, visit):
    Visit.objects.create(
        clinic=cast.clinic,
        patient=cast.patient_of_doctor2,
        doctor=cast.doctor,
        scheduled_at=timezone.now() - timedelta(days=1),
        created_by=cast.doctor.user,
        status=Visit.Status.IN_CALL,
        started_at=timezone.now() - timedelta(days=1),
    )
    set_status(visit, Visit.Status.WAITING)
    assert services.visit_admit(visit_id=visit.pk, user=cast.doctor.user).status == "in_call"


def _call_with_a_colleague(cast):
    from consulta.calls.models import InternalCall

    return InternalCall.objects.create(
        clinic_id=cast.doctor.clinic_id,
        caller=cast.doctor2,
        callee=cast.doctor,
        status=InternalCall.Status.ACCEPTED,
        answered_at=timezone.now(),
    )


def test_a_doctor_in_a_call_with_a_colleague_cannot_admit(cast, visit):
    from tests.calls.conftest import go_online

    set_status(visit, Visit.Status.WAITING)
    call = _call_with_a_colleague(cast)
    go_online(cast.doctor, call=call)  # the doctor's call page is open
    with pytest.raises(DomainError) as refusal:
        services.visit_admit(visit_id=visit.pk, user=cast.doctor.user)
    assert refusal.value.code == "busy"
    assert refusal.value.extra == {"call_url": f"/calls/{call.pk}/"}  # a way back to it
    visit.refresh_from_db()
    assert visit.status == Visit.Status.WAITING


def test_admitting_leaves_a_call_whose_page_the_doctor_closed(cast, visit):
    """The call page was closed without hanging up, within the grace period for a reload:
    admitting a patient is leaving that call."""
    set_status(visit, Visit.Status.WAITING)
    call = _call_with_a_colleague(cast)
    assert services.visit_admit(visit_id=visit.pk, user=cast.doctor.user).status == "in_call"
    call.refresh_from_db()
    assert (call.status, call.ended_by_id) == ("ended", cast.doctor.user_id)
