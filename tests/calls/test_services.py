"""Internal calls: who may call whom, each transition, what is audited, and which events go
out after commit."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from consulta.audit.models import AuditEvent
from consulta.calls import services
from consulta.calls.models import InternalCall, StaffConnection
from consulta.lib.errors import DomainError
from consulta.visits.models import Visit
from tests.calls.conftest import accepted, go_online, ringing

pytestmark = pytest.mark.django_db

Status = InternalCall.Status


def events(published, kind):
    return [(group, event) for group, event in published if event["type"] == kind]


def refresh(call) -> InternalCall:
    return InternalCall.objects.get(pk=call.pk)


def in_a_visit(doctor, patient, started_at=None) -> Visit:
    now = timezone.now()
    return Visit.objects.create(
        clinic=doctor.clinic,
        patient=patient,
        doctor=doctor,
        scheduled_at=now,
        status=Visit.Status.IN_CALL,
        ready_at=now,
        started_at=started_at or now,
    )


# --- calling ---------------------------------------------------------------------------


def test_doctor_calls_an_online_colleague_and_it_rings(cast, published, capture):
    go_online(cast.doctor2)
    with capture():
        call = services.call_start(by=cast.doctor, callee=cast.doctor2)
    call = refresh(call)
    assert call.status == Status.RINGING
    assert (call.caller, call.callee, call.clinic) == (cast.doctor, cast.doctor2, cast.clinic)
    event = AuditEvent.objects.get(action="call.start")
    assert event.actor == cast.doctor.user
    assert event.target_id == str(call.pk)
    assert event.patient is None
    changed = events(published, "call.changed")
    assert sorted(group for group, _e in changed) == sorted(
        [f"staff.{cast.doctor.pk}", f"staff.{cast.doctor2.pk}"]
    )
    payload = changed[0][1]["call"]
    assert payload["status"] == "ringing"
    assert payload["caller"] == {"id": cast.doctor.pk, "name": "Dr. Anna Rossi"}
    assert 30 < payload["ring_seconds_left"] <= 45  # (a busy test machine is slow)
    assert events(published, "call.state")[0][0] == f"call.{call.pk}"
    # Ringing is not being in a call: nobody's presence changed.
    assert events(published, "presence.changed") == []


def test_nothing_is_published_before_commit(cast, published):
    go_online(cast.doctor2)
    with transaction.atomic():
        services.call_start(by=cast.doctor, callee=cast.doctor2)
        assert published == []


def test_a_secretary_and_an_administrator_can_call_too(cast):
    go_online(cast.doctor)
    go_online(cast.doctor2)
    assert services.call_start(by=cast.secretary, callee=cast.doctor).status == Status.RINGING
    assert services.call_start(by=cast.clinic_admin, callee=cast.doctor2).status == Status.RINGING


def test_nobody_can_call_themselves(cast):
    go_online(cast.doctor)
    with pytest.raises(DomainError) as refusal:
        services.call_start(by=cast.doctor, callee=cast.doctor)
    assert refusal.value.code == "self"


def test_staff_of_another_clinic_cannot_be_called(cast):
    go_online(cast.other_doctor)
    with pytest.raises(DomainError) as refusal:
        services.call_start(by=cast.doctor, callee=cast.other_doctor)
    assert refusal.value.code == "forbidden"
    assert not InternalCall.objects.exists()


def test_an_offline_colleague_cannot_be_called(cast):
    with pytest.raises(DomainError) as refusal:
        services.call_start(by=cast.doctor, callee=cast.doctor2)
    assert refusal.value.code == "offline"
    assert str(refusal.value.message) == "Dr. Marco Bianchi is offline."


def test_a_colleague_whose_page_stopped_answering_is_offline(cast):
    go_online(cast.doctor2, seen=timezone.now() - timedelta(seconds=61))
    with pytest.raises(DomainError) as refusal:
        services.call_start(by=cast.doctor, callee=cast.doctor2)
    assert refusal.value.code == "offline"


def test_a_colleague_already_ringing_is_busy(cast):
    go_online(cast.doctor2)
    services.call_start(by=cast.secretary, callee=cast.doctor2)
    with pytest.raises(DomainError) as refusal:
        services.call_start(by=cast.doctor, callee=cast.doctor2)
    assert refusal.value.code == "busy"
    assert str(refusal.value.message) == (
        "Dr. Marco Bianchi is busy in another call. Try again later."
    )
    assert InternalCall.objects.count() == 1


def test_a_colleague_in_a_call_is_busy(cast):
    go_online(cast.doctor2)
    accepted(cast.secretary, cast.doctor2)
    with pytest.raises(DomainError) as refusal:
        services.call_start(by=cast.doctor, callee=cast.doctor2)
    assert refusal.value.code == "busy"


def test_a_colleague_calling_someone_else_is_busy(cast):
    go_online(cast.doctor2)
    ringing(cast.doctor2, cast.secretary)
    with pytest.raises(DomainError) as refusal:
        services.call_start(by=cast.doctor, callee=cast.doctor2)
    assert refusal.value.code == "busy"


def test_a_doctor_in_a_video_visit_is_busy(cast):
    go_online(cast.doctor2)
    in_a_visit(cast.doctor2, cast.patient_of_doctor2)
    with pytest.raises(DomainError) as refusal:
        services.call_start(by=cast.doctor, callee=cast.doctor2)
    assert refusal.value.code == "busy"


def test_a_visit_left_open_for_a_day_does_not_make_anyone_busy(cast):
    go_online(cast.doctor2)
    in_a_visit(cast.doctor2, cast.patient_of_doctor2, timezone.now() - timedelta(hours=13))
    assert services.call_start(by=cast.doctor, callee=cast.doctor2).status == Status.RINGING


def test_a_caller_already_in_a_call_must_hang_up_first(cast):
    go_online(cast.doctor2)
    call = accepted(cast.doctor, cast.secretary)
    go_online(cast.doctor, call=call)  # the call page is open
    with pytest.raises(DomainError) as refusal:
        services.call_start(by=cast.doctor, callee=cast.doctor2)
    assert refusal.value.code == "busy"
    assert str(refusal.value.message) == "You are already in a call: hang up first."
    call.refresh_from_db()
    assert call.status == Status.ACCEPTED


def test_calling_someone_busy_after_closing_the_call_page_still_ends_that_call(cast):
    go_online(cast.doctor2)
    call = accepted(cast.doctor, cast.secretary)
    ringing(cast.clinic_admin, cast.doctor2)  # Marco is busy
    with pytest.raises(DomainError):
        services.call_start(by=cast.doctor, callee=cast.doctor2)
    assert refresh(call).status == Status.ENDED


def test_calling_after_closing_the_call_page_ends_that_call(cast):
    """The page was closed without hanging up, and the grace period for a reload has not
    run out: calling someone else is leaving that call."""
    go_online(cast.doctor2)
    go_online(cast.doctor)  # another page of the caller's, not on the call
    call = accepted(cast.doctor, cast.secretary)
    go_online(cast.secretary, call=call)  # the other person is still on it
    new = services.call_start(by=cast.doctor, callee=cast.doctor2)
    assert new.status == Status.RINGING
    call.refresh_from_db()
    assert (call.status, call.ended_by_id) == (Status.ENDED, cast.doctor.user_id)
    assert AuditEvent.objects.filter(action="call.end", target_id=str(call.pk)).exists()


def test_the_database_refuses_two_live_calls_to_one_person(cast):
    ringing(cast.doctor, cast.doctor2)
    with pytest.raises(IntegrityError), transaction.atomic():
        ringing(cast.secretary, cast.doctor2)


# --- answering --------------------------------------------------------------------------


@pytest.fixture
def call(cast):
    go_online(cast.doctor2)
    return services.call_start(by=cast.doctor, callee=cast.doctor2)


def test_the_callee_accepts_and_both_are_in_a_call(cast, call, published, capture):
    go_online(cast.doctor)
    with capture():
        services.call_accept(call_id=call.pk, user=cast.doctor2.user)
    call = refresh(call)
    assert call.status == Status.ACCEPTED
    assert call.answered_at is not None
    assert AuditEvent.objects.get(action="call.accept").actor == cast.doctor2.user
    state = events(published, "call.state")[0][1]
    assert state["status"] == "accepted"
    assert state["answered_at"] == call.answered_at.isoformat()
    presence = sorted(
        (event["staff"], event["state"]) for _g, event in events(published, "presence.changed")
    )
    assert presence == sorted([(cast.doctor.pk, "in_call"), (cast.doctor2.pk, "in_call")])
    assert {group for group, _e in events(published, "presence.changed")} == {
        f"clinic.{cast.clinic.pk}.staff"
    }


def test_accepting_twice_is_harmless(cast, call):
    services.call_accept(call_id=call.pk, user=cast.doctor2.user)
    services.call_accept(call_id=call.pk, user=cast.doctor2.user)
    assert AuditEvent.objects.filter(action="call.accept").count() == 1


@pytest.mark.parametrize("who", ["doctor", "secretary", "other_doctor"])
def test_only_the_callee_can_accept(cast, call, who):
    with pytest.raises(DomainError) as refusal:
        services.call_accept(call_id=call.pk, user=getattr(cast, who).user)
    assert refusal.value.code == "forbidden"
    assert refresh(call).status == Status.RINGING


def test_the_callee_declines_and_the_caller_is_told(cast, call, published, capture):
    with capture():
        services.call_decline(call_id=call.pk, user=cast.doctor2.user)
    call = refresh(call)
    assert call.status == Status.DECLINED
    assert call.ended_by == cast.doctor2.user
    assert call.ended_at is not None
    assert AuditEvent.objects.get(action="call.decline").actor == cast.doctor2.user
    to_caller = [e for g, e in events(published, "call.changed") if g == f"staff.{cast.doctor.pk}"]
    assert to_caller[0]["call"]["status"] == "declined"


def test_declining_a_call_that_stopped_ringing_changes_nothing(cast, call):
    services.call_hang_up(call_id=call.pk, user=cast.doctor.user)
    services.call_decline(call_id=call.pk, user=cast.doctor2.user)
    assert refresh(call).status == Status.CANCELLED


def test_the_caller_cancels_while_it_rings(cast, call, published, capture):
    with capture():
        services.call_hang_up(call_id=call.pk, user=cast.doctor.user)
    assert refresh(call).status == Status.CANCELLED
    assert AuditEvent.objects.get(action="call.cancel").actor == cast.doctor.user
    to_callee = [e for g, e in events(published, "call.changed") if g == f"staff.{cast.doctor2.pk}"]
    assert to_callee[0]["call"]["status"] == "cancelled"


def test_a_cancelled_call_can_no_longer_be_accepted(cast, call):
    services.call_hang_up(call_id=call.pk, user=cast.doctor.user)
    with pytest.raises(DomainError) as refusal:
        services.call_accept(call_id=call.pk, user=cast.doctor2.user)
    assert refusal.value.code == "cancelled"
    assert str(refusal.value.message) == "Dr. Anna Rossi cancelled the call."


def test_the_callee_hanging_up_while_it_rings_declines(cast, call):
    services.call_hang_up(call_id=call.pk, user=cast.doctor2.user)
    assert refresh(call).status == Status.DECLINED


@pytest.mark.parametrize("who", ["doctor", "doctor2"])
def test_either_hangs_up_and_the_call_ends_for_both(cast, call, who, published, capture):
    services.call_accept(call_id=call.pk, user=cast.doctor2.user)
    go_online(cast.doctor)
    with capture():
        services.call_hang_up(call_id=call.pk, user=getattr(cast, who).user)
    call = refresh(call)
    assert call.status == Status.ENDED
    assert call.ended_by == getattr(cast, who).user
    assert AuditEvent.objects.get(action="call.end").actor == getattr(cast, who).user
    assert events(published, "call.state")[0][1]["status"] == "ended"
    presence = sorted(
        (event["staff"], event["state"]) for _g, event in events(published, "presence.changed")
    )
    assert presence == sorted([(cast.doctor.pk, "online"), (cast.doctor2.pk, "online")])


def test_nobody_else_can_hang_up(cast, call):
    with pytest.raises(DomainError) as refusal:
        services.call_hang_up(call_id=call.pk, user=cast.secretary.user)
    assert refusal.value.code == "forbidden"


# --- nobody answers -----------------------------------------------------------------------


def backdate(call, seconds) -> None:
    InternalCall.objects.filter(pk=call.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_an_unanswered_call_is_missed_after_the_ring_time(cast, call, published, capture):
    backdate(call, 46)
    with capture():
        services.call_expire(call_id=call.pk)
    call = refresh(call)
    assert call.status == Status.MISSED
    assert call.ended_by is None
    assert AuditEvent.objects.get(action="call.missed").actor is None
    assert events(published, "call.state")[0][1]["status"] == "missed"


def test_a_call_still_within_its_ring_time_keeps_ringing(cast, call):
    backdate(call, 40)
    services.call_expire(call_id=call.pk)
    assert refresh(call).status == Status.RINGING


def test_the_ring_time_is_a_setting(cast, call, settings):
    settings.INTERNAL_CALL_RING_SECONDS = 20
    backdate(call, 21)
    services.call_expire(call_id=call.pk)
    assert refresh(call).status == Status.MISSED


def test_a_late_answer_finds_the_call_missed(cast, call):
    backdate(call, 50)
    with pytest.raises(DomainError) as refusal:
        services.call_accept(call_id=call.pk, user=cast.doctor2.user)
    assert refusal.value.code == "missed"
    assert refresh(call).status == Status.MISSED


def test_a_missed_call_nobody_looked_at_does_not_block_the_next_call(cast, call):
    backdate(call, 50)  # no page was open to expire it on time
    go_online(cast.secretary)
    services.call_start(by=cast.secretary, callee=cast.doctor2)
    assert refresh(call).status == Status.MISSED


def test_the_sweep_expires_missed_calls(cast, call):
    backdate(call, 50)
    services.calls_sweep(clinic_id=cast.clinic.pk, force=True)
    assert refresh(call).status == Status.MISSED


def test_the_sweep_ends_a_call_no_page_holds_any_more(cast):
    call = accepted(cast.doctor, cast.doctor2, answered_at=timezone.now() - timedelta(minutes=5))
    old = timezone.now() - timedelta(minutes=2)
    go_online(cast.doctor, seen=old, call=call)  # both call pages crashed two minutes ago
    go_online(cast.doctor2, seen=old, call=call)
    services.calls_sweep(clinic_id=cast.clinic.pk, force=True)
    call = refresh(call)
    assert call.status == Status.ENDED
    assert AuditEvent.objects.get(action="call.end").detail == {"reason": "abandoned"}


def test_the_sweep_keeps_a_call_one_page_still_holds(cast):
    call = accepted(cast.doctor, cast.doctor2, answered_at=timezone.now() - timedelta(minutes=5))
    go_online(cast.doctor, call=call)
    services.calls_sweep(clinic_id=cast.clinic.pk, force=True)
    assert refresh(call).status == Status.ACCEPTED


def test_the_sweep_gives_a_new_call_a_minute_to_open_its_pages(cast):
    call = accepted(cast.doctor, cast.doctor2)
    services.calls_sweep(clinic_id=cast.clinic.pk, force=True)
    assert refresh(call).status == Status.ACCEPTED


# --- away from the call page -------------------------------------------------------------


def test_a_person_whose_call_page_closed_is_away_unless_another_page_holds_it(cast):
    call = accepted(cast.doctor, cast.doctor2)
    go_online(cast.doctor2, call=call)  # a second tab of Marco's, still on the call
    services.call_page_closed(call_id=call.pk, staff_id=cast.doctor2.pk)
    assert refresh(call).callee_away_since is None
    services.call_page_closed(call_id=call.pk, staff_id=cast.doctor.pk)
    call = refresh(call)
    assert call.caller_away_since is not None
    services.call_page_opened(call_id=call.pk, staff_id=cast.doctor.pk)  # back
    assert refresh(call).caller_away_since is None


def test_a_person_away_for_the_grace_period_has_hung_up(cast, settings):
    settings.VISIT_RECONNECT_GRACE_SECONDS = 120
    call = accepted(cast.doctor, cast.doctor2)
    went = timezone.now() - timedelta(seconds=100)
    services.call_page_closed(call_id=call.pk, staff_id=cast.doctor2.pk, now=went)
    services.calls_end_abandoned(calls=Q(pk=call.pk))
    assert refresh(call).status == Status.ACCEPTED  # 100 s: they may still come back
    services.calls_end_abandoned(calls=Q(pk=call.pk), now=went + timedelta(seconds=121))
    call = refresh(call)
    assert (call.status, call.ended_by_id) == (Status.ENDED, cast.doctor2.user_id)
    assert AuditEvent.objects.get(action="call.end").detail == {"reason": "left"}


def test_a_person_back_and_away_again_waits_the_whole_grace_period_again(cast, settings):
    settings.VISIT_RECONNECT_GRACE_SECONDS = 120
    call = accepted(cast.doctor, cast.doctor2)
    first = timezone.now() - timedelta(seconds=150)
    services.call_page_closed(call_id=call.pk, staff_id=cast.doctor2.pk, now=first)
    services.call_page_opened(call_id=call.pk, staff_id=cast.doctor2.pk)
    services.call_page_closed(call_id=call.pk, staff_id=cast.doctor2.pk)  # again, now
    services.calls_end_abandoned(calls=Q(pk=call.pk))
    assert refresh(call).status == Status.ACCEPTED


def test_the_sweep_makes_the_person_of_a_silent_call_page_away_from_then_on(cast, settings):
    settings.VISIT_RECONNECT_GRACE_SECONDS = 120
    now = timezone.now()
    call = accepted(cast.doctor, cast.doctor2, answered_at=now - timedelta(minutes=5))
    anna = go_online(cast.doctor, call=call)  # Anna is still on the call
    go_online(cast.doctor2, call=call, seen=now - timedelta(seconds=90))  # Marco's dropped
    services.calls_sweep(clinic_id=cast.clinic.pk, force=True, now=now)
    call = refresh(call)
    assert (call.status, call.callee_away_since) == (Status.ACCEPTED, now)
    later = now + timedelta(seconds=121)
    StaffConnection.objects.filter(pk=anna.pk).update(last_seen=later)  # Anna's pings
    services.calls_sweep(clinic_id=cast.clinic.pk, force=True, now=later)
    call = refresh(call)
    assert (call.status, call.ended_by_id) == (Status.ENDED, cast.doctor2.user_id)
    assert AuditEvent.objects.get(action="call.end").detail == {"reason": "left"}


def test_a_person_away_whose_page_holds_the_call_again_has_not_hung_up(cast, settings):
    """Marked away by a sweep while the page slept (a laptop's lid closed); the page pings
    again. The heartbeat clears the mark; and the end checks anyway."""
    settings.VISIT_RECONNECT_GRACE_SECONDS = 120
    call = accepted(cast.doctor, cast.doctor2)
    went = timezone.now() - timedelta(seconds=150)
    services.call_page_closed(call_id=call.pk, staff_id=cast.doctor2.pk, now=went)
    go_online(cast.doctor2, call=call)  # its row, back through a heartbeat
    services.calls_end_abandoned(calls=Q(pk=call.pk))
    call = refresh(call)
    assert (call.status, call.callee_away_since) == (Status.ACCEPTED, None)


def test_a_page_closing_while_it_rang_does_not_end_a_call_answered_meanwhile(cast):
    call = accepted(cast.doctor, cast.doctor2)
    services.call_hang_up(call_id=call.pk, user=cast.doctor.user, if_status=Status.RINGING)
    assert refresh(call).status == Status.ACCEPTED


def test_the_sweep_runs_at_most_every_few_seconds(cast, call):
    backdate(call, 50)
    services.calls_sweep(clinic_id=cast.clinic.pk)
    assert refresh(call).status == Status.MISSED
    other = ringing(cast.secretary, cast.clinic_admin)
    backdate(other, 50)
    services.calls_sweep(clinic_id=cast.clinic.pk)  # too soon after the last one
    assert refresh(other).status == Status.RINGING


# --- what the pages see -------------------------------------------------------------------


def test_the_ringing_calls_of_a_person_are_the_ones_still_ringing(cast, call):
    assert services.ringing_calls_for(cast.doctor2) == [call]
    assert services.ringing_calls_for(cast.doctor) == []
    backdate(call, 50)
    assert services.ringing_calls_for(cast.doctor2) == []
