from datetime import UTC, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from consulta.audit.models import AuditEvent
from consulta.visits.models import Visit


def room(visit):
    return reverse("visit_room", args=[visit.pk])


# --- who may open the visit page -------------------------------------------------------


def test_doctor_opens_the_room_of_their_visit(client, login, visit):
    login(visit.doctor)
    response = client.get(room(visit))
    assert response.status_code == 200
    assert response.context["role"] == "doctor"
    assert b'id="admit-button"' in response.content


def test_patient_opens_the_waiting_room_of_their_visit(client, login, cast, visit):
    login(cast.patient)
    response = client.get(room(visit))
    assert response.status_code == 200
    assert response.context["role"] == "patient"
    assert b'id="ready-button"' in response.content
    assert b'id="admit-button"' not in response.content


@pytest.mark.parametrize(
    "who",
    [
        "doctor2",
        "secretary",
        "clinic_admin",
        "patient_of_doctor2",
        "other_doctor",
        "other_patient",
        "operator",
    ],
)
def test_nobody_else_can_open_the_visit(client, login, cast, visit, who):
    login(getattr(cast, who))
    assert client.get(room(visit)).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, visit):
    response = client.get(room(visit))
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_opening_the_visit_is_audited(client, login, cast, visit):
    login(cast.doctor)
    client.get(room(visit))
    event = AuditEvent.objects.get(action="visit.open")
    assert event.actor == cast.doctor.user
    assert event.patient == cast.patient
    assert event.target_id == str(visit.pk)


def test_room_page_loads_no_inline_script_and_sends_a_strict_csp(client, login, cast, visit):
    login(cast.patient)
    response = client.get(room(visit))
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    html = response.content.decode()
    # Data blocks only: every <script> either has a src or is application/json.
    for tag in html.split("<script")[1:]:
        opening = tag.split(">", 1)[0]
        assert "src=" in opening or 'type="application/json"' in opening


# --- dashboard ------------------------------------------------------------------------


def test_dashboard_lists_the_doctors_visits_and_waiting_patients(client, login, cast, visit):
    visit.status = Visit.Status.WAITING
    visit.ready_at = timezone.now()
    visit.save()
    login(cast.doctor)
    response = client.get(reverse("dashboard"))
    assert response.context["waiting"] == [visit]
    assert b"Paolo Esposito" in response.content


def test_dashboard_shows_a_visit_nobody_joined_in_time_as_missed(
    client, login, cast, visit, monkeypatch
):
    """As the visit list does: more than two hours after its time, nobody joined: missed, not
    "upcoming" with a button to open its room."""
    afternoon = timezone.localtime().replace(hour=15, minute=0, second=0, microsecond=0)
    monkeypatch.setattr(timezone, "now", lambda: afternoon)
    Visit.objects.filter(pk=visit.pk).update(scheduled_at=afternoon - timedelta(hours=4))
    soon = Visit.objects.create(
        clinic=cast.clinic,
        patient=cast.patient,
        doctor=cast.doctor,
        scheduled_at=afternoon - timedelta(minutes=30),
    )
    login(cast.doctor)
    response = client.get(reverse("dashboard"))
    assert response.context["upcoming"] == [soon]
    assert [v.pk for v in response.context["ended_today"]] == [visit.pk]
    assert "Missed" in response.content.decode()


def test_a_call_going_on_long_after_its_time_is_never_missed(client, login, cast, visit):
    """Missed means nobody joined: the dashboard, the visit list and the patient's home agree
    that a patient still waiting, or a call that started late, is not history."""
    Visit.objects.filter(pk=visit.pk).update(
        status=Visit.Status.IN_CALL, scheduled_at=timezone.now() - timedelta(hours=3)
    )
    login(cast.doctor)
    assert [v.pk for v in client.get(reverse("visit_list")).context["upcoming"]] == [visit.pk]
    login(cast.patient)
    assert [v.pk for v in client.get(reverse("patient_home")).context["open_visits"]] == [visit.pk]


def test_dashboard_of_another_doctor_does_not_list_the_visit(client, login, cast, visit):
    login(cast.doctor2)
    response = client.get(reverse("dashboard"))
    assert response.context["upcoming"] == []


def test_secretary_sees_the_clinics_visits_but_cannot_create_one(client, login, cast, visit):
    login(cast.secretary)
    response = client.get(reverse("dashboard"))
    assert response.context["upcoming"] == [visit]
    assert response.context["form"] is None
    response = client.post(reverse("visit_create"), {"patient": cast.patient.pk, "when": "now"})
    assert response.status_code == 400
    assert Visit.objects.count() == 1


def test_patient_and_outsider_have_no_dashboard(client, login, cast):
    login(cast.patient)
    assert client.get(reverse("dashboard")).status_code == 404
    assert client.get(reverse("dashboard_visits")).status_code == 404


def test_dashboard_query_count_does_not_grow_with_visits(
    client, login, cast, django_assert_max_num_queries
):
    for _ in range(15):
        Visit.objects.create(
            clinic=cast.clinic,
            patient=cast.patient,
            doctor=cast.doctor,
            scheduled_at=timezone.now() + timedelta(hours=1),
        )
    login(cast.secretary)
    with django_assert_max_num_queries(12):
        client.get(reverse("dashboard_visits"))


# --- creating a visit -------------------------------------------------------------------


def test_doctor_creates_a_visit_for_now_and_lands_in_the_room(client, login, cast):
    login(cast.doctor)
    response = client.post(reverse("visit_create"), {"patient": cast.patient.pk, "when": "now"})
    visit = Visit.objects.get()
    assert response.status_code == 302
    assert response.url == room(visit)
    assert visit.doctor == cast.doctor
    assert abs((visit.scheduled_at - timezone.now()).total_seconds()) < 60


def test_doctor_creates_a_visit_at_a_local_time(client, login, cast):
    login(cast.doctor)
    response = client.post(
        reverse("visit_create"),
        {
            "patient": cast.patient.pk,
            "when": "later",
            "scheduled_at": "2099-07-15T09:30",
        },
    )
    assert response.status_code == 302
    visit = Visit.objects.get()
    # 09:30 in Rome, in summer time (UTC+2) on that date.
    assert visit.scheduled_at.astimezone(UTC).strftime("%H:%M") == "07:30"


def test_doctor_can_start_a_visit_with_a_patient_of_the_group_practice(client, login, cast):
    login(cast.doctor)
    client.post(reverse("visit_create"), {"patient": cast.patient_of_doctor2.pk, "when": "now"})
    assert Visit.objects.get().patient == cast.patient_of_doctor2


def test_doctor_cannot_create_a_visit_for_another_clinics_patient(client, login, cast):
    login(cast.doctor)
    response = client.post(
        reverse("visit_create"), {"patient": cast.other_patient.pk, "when": "now"}
    )
    assert response.status_code == 400
    assert "This patient is not one of your patients." in response.content.decode()
    assert not Visit.objects.exists()


def test_a_visit_in_the_past_is_refused_with_a_clear_message(client, login, cast):
    login(cast.doctor)
    response = client.post(
        reverse("visit_create"),
        {
            "patient": cast.patient.pk,
            "when": "later",
            "scheduled_at": "2020-01-01T10:00",
        },
    )
    assert response.status_code == 400
    assert "The visit time is in the past. Choose a later time." in response.content.decode()
    assert not Visit.objects.exists()


def test_a_later_visit_needs_a_time(client, login, cast):
    login(cast.doctor)
    response = client.post(reverse("visit_create"), {"patient": cast.patient.pk, "when": "later"})
    assert "Choose the date and time of the visit." in response.content.decode()
    assert not Visit.objects.exists()


# --- patient home -------------------------------------------------------------------------


def test_patient_home_lists_only_their_own_visits(client, login, cast, visit):
    Visit.objects.create(
        clinic=cast.clinic,
        patient=cast.patient_of_doctor2,
        doctor=cast.doctor2,
        scheduled_at=timezone.now(),
    )
    login(cast.patient)
    response = client.get(reverse("patient_home"))
    assert response.context["open_visits"] == [visit]


def test_staff_have_no_patient_home(client, login, cast):
    login(cast.doctor)
    assert client.get(reverse("patient_home")).status_code == 404


def test_a_visit_missed_long_ago_is_history_not_upcoming(client, login, cast, visit):
    missed = Visit.objects.create(
        clinic=cast.clinic,
        patient=cast.patient,
        doctor=cast.doctor,
        scheduled_at=timezone.now() - timedelta(days=3),
    )
    login(cast.patient)
    response = client.get(reverse("patient_home"))
    assert response.context["open_visits"] == [visit]
    assert response.context["past_visits"] == [missed]


# --- where a visit starts, and the join window on the page ----------------------------------


def test_doctor_starts_a_video_visit_from_the_patient_record(client, login, cast):
    login(cast.doctor)
    page = client.get(reverse("patient_detail", args=[cast.patient.pk])).content.decode()
    assert "Start video visit" in page
    response = client.post(reverse("visit_create"), {"patient": cast.patient.pk, "when": "now"})
    visit = Visit.objects.get(patient=cast.patient)
    assert response["Location"] == reverse("visit_room", args=[visit.pk])


def test_the_secretary_sees_no_start_button_on_the_record(client, login, cast):
    from consulta.accounts.models import CareTeam

    CareTeam.objects.get(clinic=cast.clinic, kind=CareTeam.Kind.GROUP).members.add(cast.secretary)
    login(cast.secretary)
    page = client.get(reverse("patient_detail", args=[cast.patient.pk])).content.decode()
    assert "Start video visit" not in page


def test_the_visit_list_shows_upcoming_and_past_and_starts_the_waiting_ones(
    client, login, cast, visit
):
    Visit.objects.filter(pk=visit.pk).update(status=Visit.Status.WAITING)
    old = Visit.objects.create(
        clinic=cast.clinic,
        patient=cast.patient,
        doctor=cast.doctor,
        scheduled_at=visit.scheduled_at - timedelta(days=3),
        created_by=cast.doctor.user,
    )
    login(cast.doctor)
    response = client.get(reverse("visit_list"))
    assert response.context["upcoming"] == [Visit.objects.get(pk=visit.pk)]
    assert response.context["past"] == [old]
    html = response.content.decode()
    assert (
        f'<a class="button primary" href="{reverse("visit_room", args=[visit.pk])}">Start</a>'
        in html
    )
    assert "Missed" in html
    searched = client.get(reverse("visit_list"), {"q": "Nessuno"})
    assert searched.context["upcoming"] == [] and searched.context["past"] == []
    assert client.get(reverse("visit_list"), {"q": "Esposito"}).context["past"] == [old]


def test_the_visit_list_refreshes_its_lists_alone(client, login, cast, visit):
    login(cast.doctor)
    page = client.get(reverse("visit_list"), {"q": "Esposito"}).content.decode()
    assert 'data-ws-path="/ws/clinic/visits/"' in page
    assert f'data-live-source="{reverse("visit_list")}?part=lists&amp;q=Esposito"' in page
    Visit.objects.filter(pk=visit.pk).update(status=Visit.Status.WAITING)
    part = client.get(reverse("visit_list"), {"part": "lists", "q": "Esposito"})
    html = part.content.decode()
    assert "<h1>" not in html and 'id="start-patient-search"' not in html
    assert f'href="{reverse("visit_room", args=[visit.pk])}">Start</a>' in html


# --- the start form: the patient is searched for, never listed ----------------------------


@pytest.mark.parametrize("page", ["dashboard", "visit_list"])
def test_the_start_form_lists_no_patient_before_a_search(client, login, cast, page):
    login(cast.doctor)
    response = client.get(reverse(page))
    html = response.content.decode()
    assert 'id="start-patient-search"' in html and 'id="start-visit-form"' in html
    assert response.context["patient_choices"] == []
    assert "Esposito" not in html and "Conti" not in html


@pytest.mark.parametrize("page", ["dashboard", "visit_list", "visit_patient_choices"])
def test_the_start_form_finds_the_doctors_patients(client, login, cast, page):
    login(cast.doctor)
    response = client.get(reverse(page), {"patient_q": "esposito"})
    assert response.context["patient_choices"] == [cast.patient]
    # One match: it is chosen already, Start is one press away.
    html = response.content.decode()
    assert (
        f'<input type="radio" name="patient" value="{cast.patient.pk}" form="start-visit-form"'
        " checked>" in html
    )
    # Another clinic's patient is never found.
    assert client.get(reverse(page), {"patient_q": "Durand"}).context["patient_choices"] == []


def test_the_start_form_does_not_find_archived_patients(client, login, cast):
    cast.patient.archived_at = timezone.now()
    cast.patient.archive_reason = "OTHER"
    cast.patient.save(update_fields=["archived_at", "archive_reason"])
    login(cast.doctor)
    response = client.get(reverse("visit_patient_choices"), {"patient_q": "Esposito"})
    assert response.context["patient_choices"] == []
    assert "No patient matches this search." in response.content.decode()
    refused = client.post(reverse("visit_create"), {"patient": cast.patient.pk, "when": "now"})
    assert refused.status_code == 400
    assert not Visit.objects.exists()


def test_a_refused_start_keeps_the_chosen_patient(client, login, cast):
    login(cast.doctor)
    response = client.post(
        reverse("visit_create"), {"patient": cast.patient.pk, "when": "later", "scheduled_at": ""}
    )
    assert response.status_code == 400
    assert response.context["patient_choices"] == [cast.patient]
    assert response.context["chosen_patient"] == cast.patient
    assert "Choose the date and time of the visit." in response.content.decode()


def test_starting_without_a_patient_says_so(client, login, cast):
    login(cast.doctor)
    response = client.post(reverse("visit_create"), {"when": "now"})
    assert response.status_code == 400
    assert "Choose the patient." in response.content.decode()


@pytest.mark.parametrize("who", ["secretary", "patient", "other_patient", "operator"])
def test_only_doctors_search_patients_for_a_visit(client, login, cast, who):
    login(getattr(cast, who))
    response = client.get(reverse("visit_patient_choices"), {"patient_q": "Esposito"})
    assert response.status_code == 404


def test_searching_patients_for_a_visit_needs_a_sign_in(client):
    response = client.get(reverse("visit_patient_choices"), {"patient_q": "Esposito"})
    assert response.status_code == 302


@pytest.mark.parametrize("who", ["patient", "operator"])
def test_the_visit_list_is_for_staff(client, login, cast, who):
    login(getattr(cast, who))
    assert client.get(reverse("visit_list")).status_code == 404


def test_other_clinics_staff_see_none_of_our_visits(client, login, cast, visit):
    login(cast.other_doctor)
    response = client.get(reverse("visit_list"))
    assert response.context["upcoming"] == [] and response.context["past"] == []


def test_a_patient_early_sees_when_the_waiting_room_opens(client, login, cast, visit):
    Visit.objects.filter(pk=visit.pk).update(scheduled_at=visit.scheduled_at + timedelta(hours=1))
    login(cast.patient)
    response = client.get(reverse("visit_room", args=[visit.pk]))
    assert "You can enter the waiting room from" in response.content.decode()
    assert 40 * 60 < response.context["config"]["joinOpensIn"] <= 50 * 60
    assert response.context["config"]["joinClosed"] is False


# --- per-patient room settings -----------------------------------------------------------------

ROOM_FORM = {
    "shows_elapsed_time": "on",
    "notify_when_doctor_enters": "on",
    "notify_text": "Il dottore è pronto.",
    "notify_by_email": "on",
}


def test_a_doctor_saves_room_settings_on_the_patients_record(client, login, cast, visit):
    login(cast.doctor)
    page = client.get(reverse("patient_detail", args=[cast.patient.pk])).content.decode()
    assert "Video visit settings" in page
    response = client.post(reverse("visit_room_settings", args=[cast.patient.pk]), ROOM_FORM)
    assert response["Location"].endswith("#room-settings")
    login(cast.patient)
    config = client.get(reverse("visit_room", args=[visit.pk])).context["config"]
    assert config["selfView"] is False  # unticked
    assert config["showElapsed"] is True


def test_the_doctor_always_sees_self_view_and_elapsed_time(client, login, cast, visit):
    login(cast.doctor)
    client.post(reverse("visit_room_settings", args=[cast.patient.pk]), {})
    config = client.get(reverse("visit_room", args=[visit.pk])).context["config"]
    assert config["selfView"] is True and config["showElapsed"] is True


@pytest.mark.parametrize("who", ["secretary", "patient", "other_doctor", "clinic_admin"])
def test_others_cannot_change_room_settings(client, login, cast, who):
    login(getattr(cast, who))
    response = client.post(reverse("visit_room_settings", args=[cast.patient.pk]), ROOM_FORM)
    assert response.status_code == 404
    from consulta.visits.models import RoomSettings

    assert not RoomSettings.objects.exists()


def test_the_doctor_sets_them_from_the_room_without_leaving_it(client, login, cast, visit):
    login(cast.doctor)
    page = client.get(reverse("visit_room", args=[visit.pk])).content.decode()
    assert 'id="room-settings-form"' in page
    url = reverse("visit_room_settings", args=[cast.patient.pk])
    saved = client.post(url, ROOM_FORM, HTTP_X_REQUESTED_WITH="fetch")
    assert saved.status_code == 200
    assert saved.json() == {"message": "The video visit settings are saved."}
    refused = client.post(url, {"notify_when_doctor_enters": "on"}, HTTP_X_REQUESTED_WITH="fetch")
    assert refused.status_code == 400
    assert refused.json() == {"message": "Choose email, text message or both."}
    from consulta.visits.models import RoomSettings

    assert RoomSettings.objects.get().notify_by_email  # the refused change changed nothing


def test_the_patient_gets_no_settings_form_in_the_room(client, login, cast, visit):
    login(cast.patient)
    page = client.get(reverse("visit_room", args=[visit.pk])).content.decode()
    assert 'id="room-settings-form"' not in page


def test_room_settings_need_a_post(client, login, cast):
    login(cast.doctor)
    assert client.get(reverse("visit_room_settings", args=[cast.patient.pk])).status_code == 405
