"""Presence: online while a page's heartbeat is fresh, in a call during an accepted call or
a video visit, offline otherwise; and the events each change sends to the clinic."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consulta.calls import presence
from consulta.calls.models import StaffConnection
from consulta.visits.models import Visit
from tests.calls.conftest import accepted, go_online, ringing
from tests.conftest import make_staff

pytestmark = pytest.mark.django_db


def presence_events(published) -> list[tuple[int, str]]:
    return [
        (event["staff"], event["state"])
        for _group, event in published
        if event["type"] == "presence.changed"
    ]


# --- reading ----------------------------------------------------------------------------


def test_without_an_open_page_everyone_is_offline(cast):
    states = presence.states(cast.clinic.pk)
    assert set(states) == {
        cast.doctor.pk,
        cast.doctor2.pk,
        cast.secretary.pk,
        cast.clinic_admin.pk,
    }
    assert set(states.values()) == {"offline"}


def test_an_open_page_makes_a_person_online(cast):
    go_online(cast.secretary)
    assert presence.state_of(cast.secretary) == "online"
    assert presence.state_of(cast.doctor) == "offline"


def test_a_page_silent_for_a_minute_no_longer_counts(cast):
    go_online(cast.doctor, seen=timezone.now() - timedelta(seconds=59))
    assert presence.state_of(cast.doctor) == "online"
    StaffConnection.objects.update(last_seen=timezone.now() - timedelta(seconds=61))
    assert presence.state_of(cast.doctor) == "offline"


def test_an_accepted_call_puts_both_in_a_call(cast):
    go_online(cast.doctor)
    go_online(cast.secretary)
    accepted(cast.doctor, cast.secretary)
    assert presence.state_of(cast.doctor) == "in_call"
    assert presence.state_of(cast.secretary) == "in_call"


def test_a_ringing_call_is_not_being_in_a_call(cast):
    go_online(cast.doctor)
    go_online(cast.secretary)
    ringing(cast.doctor, cast.secretary)
    assert presence.state_of(cast.doctor) == "online"
    assert presence.state_of(cast.secretary) == "online"


def test_a_video_visit_in_progress_puts_its_doctor_in_a_call(cast, visit):
    go_online(cast.doctor)
    Visit.objects.filter(pk=visit.pk).update(
        status=Visit.Status.IN_CALL, ready_at=timezone.now(), started_at=timezone.now()
    )
    assert presence.state_of(cast.doctor) == "in_call"


def test_a_visit_left_open_for_half_a_day_does_not(cast, visit):
    go_online(cast.doctor)
    long_ago = timezone.now() - timedelta(hours=13)
    Visit.objects.filter(pk=visit.pk).update(
        status=Visit.Status.IN_CALL, ready_at=long_ago, started_at=long_ago
    )
    assert presence.state_of(cast.doctor) == "online"


def test_offline_wins_over_in_a_call(cast):
    accepted(cast.doctor, cast.secretary)
    assert presence.state_of(cast.doctor) == "offline"


def test_other_clinics_are_not_listed(cast):
    go_online(cast.other_doctor)
    assert cast.other_doctor.pk not in presence.states(cast.clinic.pk)


def test_reading_a_clinic_costs_the_same_for_many_people(cast):
    for index in range(3):
        go_online(make_staff(cast.clinic, f"more{index}@alfa.test", "DOCTOR"))
    with CaptureQueriesContext(connection) as few:
        presence.states(cast.clinic.pk)
    for index in range(10):
        go_online(make_staff(cast.clinic, f"many{index}@alfa.test", "DOCTOR"))
    with CaptureQueriesContext(connection) as many:
        presence.states(cast.clinic.pk)
    assert len(many) == len(few) <= 4


# --- changes and their events ----------------------------------------------------------------


def test_the_first_page_makes_a_person_online_for_the_clinic(cast, published, capture):
    with capture():
        presence.connection_open(staff=cast.doctor, channel_name="a")
    assert presence_events(published) == [(cast.doctor.pk, "online")]
    assert published[0][0] == f"clinic.{cast.clinic.pk}.staff"


def test_a_second_page_changes_nothing(cast, published, capture):
    presence.connection_open(staff=cast.doctor, channel_name="a")
    published.clear()
    with capture():
        presence.connection_open(staff=cast.doctor, channel_name="b")
    assert presence_events(published) == []


def test_closing_the_last_page_makes_a_person_offline(cast, published, capture):
    presence.connection_open(staff=cast.doctor, channel_name="a")
    presence.connection_open(staff=cast.doctor, channel_name="b")
    with capture():
        presence.connection_close(staff=cast.doctor, channel_name="a", clean=True)
    assert presence_events(published) == []
    with capture():
        presence.connection_close(staff=cast.doctor, channel_name="b", clean=True)
    assert presence_events(published) == [(cast.doctor.pk, "offline")]
    assert not StaffConnection.objects.exists()


def test_a_dropped_page_stays_online_until_its_heartbeat_is_stale(cast, published, capture):
    presence.connection_open(staff=cast.doctor, channel_name="a")
    published.clear()
    with capture():
        presence.connection_close(staff=cast.doctor, channel_name="a", clean=False)
    assert presence_events(published) == []
    assert presence.state_of(cast.doctor) == "online"  # it usually reconnects at once


def test_stale_pages_are_swept_and_their_people_go_offline(cast, published, capture):
    long_ago = timezone.now() - timedelta(seconds=90)
    go_online(cast.doctor, seen=long_ago)  # its server process crashed
    go_online(cast.secretary)
    with capture():
        swept = presence.connections_expire(clinic_id=cast.clinic.pk)
    assert swept == [(cast.doctor.pk, None)]
    assert presence_events(published) == [(cast.doctor.pk, "offline")]
    assert list(StaffConnection.objects.values_list("staff_id", flat=True)) == [cast.secretary.pk]


def test_a_heartbeat_brings_a_stale_page_back_online(cast, published, capture):
    row = go_online(cast.doctor, seen=timezone.now() - timedelta(seconds=90))
    with capture():
        presence.connection_seen(staff=cast.doctor, channel_name=row.channel_name)
    assert presence_events(published) == [(cast.doctor.pk, "online")]
    row.refresh_from_db()
    assert timezone.now() - row.last_seen < timedelta(seconds=5)


def test_a_heartbeat_recreates_a_row_swept_while_the_page_slept(cast, published, capture):
    with capture():
        presence.connection_seen(staff=cast.doctor, channel_name="sleepy")
    assert StaffConnection.objects.get(channel_name="sleepy").staff == cast.doctor
    assert presence_events(published) == [(cast.doctor.pk, "online")]


def test_a_regular_heartbeat_sends_nothing(cast, published, capture):
    row = go_online(cast.doctor)
    with capture():
        presence.connection_seen(staff=cast.doctor, channel_name=row.channel_name)
    assert presence_events(published) == []
