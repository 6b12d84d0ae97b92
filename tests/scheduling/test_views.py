"""The calendar through the browser's eyes: the staff calendar and its bookings, the calendar
settings, the iCal feed, and the patient's online booking, for every persona.

The views read the real clock: the calendars are laid out around today (see
view_fixtures.py), and the tests book tomorrow, which is always free and ahead."""

import re
from datetime import time, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext

from consulta.accounts.models import CareTeam, StaffMember
from consulta.audit.models import AuditEvent
from consulta.patients.models import PatientBlock
from consulta.patients.services import patient_block
from consulta.scheduling import services
from consulta.scheduling.models import (
    Absence,
    AppointmentType,
    Booking,
    Calendar,
    ContactMode,
    DayType,
    TemplateBlock,
    WeekTemplate,
    WorkPlan,
)
from consulta.visits.models import Visit
from tests.conftest import make_staff
from tests.patients.conftest import add_patient
from tests.scheduling.view_fixtures import (
    FETCH,
    at,
    book,
    day_columns,
    epoch,
    make_type,
    make_week,
    messages_of,
    move_to_the_past,
    rome_today,
    slot_starts,
    text,
    tomorrow,
    typed,
    url,
)

TAKEN = "This time has just been taken. Choose another one from the updated list."


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def team_secretary(cast) -> StaffMember:
    """The cast's secretary, serving the group practice (as tests/patients does)."""
    CareTeam.objects.get(clinic=cast.clinic, kind=CareTeam.Kind.GROUP).members.add(cast.secretary)
    return cast.secretary


@pytest.fixture
def loner(cast) -> StaffMember:
    """A doctor of the same clinic in no care team."""
    return make_staff(
        cast.clinic, "loner@alfa.test", StaffMember.Role.DOCTOR, "Luca", "Solitario", "Dr."
    )


@pytest.fixture
def visita(cast) -> AppointmentType:
    return make_type(cast.clinic_admin)


@pytest.fixture
def videoconsulto(cast) -> AppointmentType:
    return make_type(
        cast.clinic_admin,
        name="Videoconsulto",
        duration_minutes=15,
        offers_in_person=False,
        offers_video=True,
        default_contact_mode=ContactMode.VIDEO,
        colour="#11aa33",
    )


@pytest.fixture
def week(cast, visita, videoconsulto) -> WeekTemplate:
    """The cast's doctor: open for online booking, both types 08:00-20:00 every day."""
    services.calendar_set_online(by=cast.doctor, clinician=cast.doctor, online=True)
    return make_week(cast.doctor, cast.doctor, [visita, videoconsulto])


@pytest.fixture
def week2(cast, visita, videoconsulto) -> WeekTemplate:
    """The second doctor works the same hours (not open for online booking)."""
    return make_week(cast.clinic_admin, cast.doctor2, [visita, videoconsulto])


@pytest.fixture
def booking(cast, week, visita) -> Booking:
    """Paolo Esposito, tomorrow 10:00-10:20 with the cast's doctor."""
    return book(cast.doctor, cast.patient, visita, at(tomorrow(), 10))


def calendar_of(doctor, day=None, **params):
    return {"doctor": doctor.pk, "start": (day or tomorrow()).isoformat(), **params}


def calendar_url(doctor, day) -> str:
    return f"{reverse('calendar')}?doctor={doctor.pk}&start={day.isoformat()}"


def free_link(kind, moment) -> str:
    """The end of a free slot's link in the grid, with its start and its accessible name."""
    return (
        f'start={epoch(moment)}&amp;type={kind.pk}" aria-label="Book {kind.name} at {moment:%H:%M}"'
    )


def booking_form(doctor, patient, kind, moment, **fields):
    data = {
        "doctor": doctor.pk,
        "patient": patient.pk,
        "kind": kind.pk,
        "contact_mode": "",
        "starts_at": typed(moment),
        "notes_for_patient": "Portare gli esami",
        "internal_notes": "",
    }
    data.update(fields)
    return data


def reload(booking) -> Booking:
    return Booking.objects.get(pk=booking.pk)


# --- who may open the calendar ---------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_sign_in_from_every_calendar_page(client, cast, booking):
    gets = [
        url("calendar"),
        url("appointment_type_css"),
        url("booking_new") + f"?doctor={cast.doctor.pk}",
        url("booking_detail", booking.pk),
        url("calendar_settings"),
        url("type_new"),
        url("type_edit", booking.appointment_type_id),
        url("book_online"),
        url("book_online_slots", cast.doctor.pk, booking.appointment_type_id),
        url("my_bookings"),
    ]
    posts = [
        url("booking_action", booking.pk),
        url("my_booking_cancel", booking.pk),
        url("calendar_online"),
        url("calendar_feed_change"),
        url("template_create"),
    ]
    responses = [client.get(page) for page in gets]
    responses += [
        client.post(page, {"action": "cancel", "doctor": cast.doctor.pk}) for page in posts
    ]
    for response in responses:
        assert response.status_code == 302, response.wsgi_request.path
        assert response.url.startswith(reverse("account_login")), response.wsgi_request.path
    assert reload(booking).status == Booking.Status.BOOKED


def test_doctor_opens_their_own_calendar_by_default(client, login, cast, week):
    login(cast.doctor)
    response = client.get(url("calendar"))
    assert response.status_code == 200
    assert response.context["doctor"] == cast.doctor
    assert response.context["doctors"] == [cast.doctor2, cast.doctor]  # Bianchi, Rossi


@pytest.mark.parametrize("who", ["doctor", "doctor2", "team_secretary"])
def test_the_doctor_their_group_colleague_and_the_teams_secretary_can_open_the_calendar_and_book(
    client, login, cast, request, week, visita, who
):
    login(request.getfixturevalue(who) if who == "team_secretary" else getattr(cast, who))
    response = client.get(url("calendar"), calendar_of(cast.doctor))
    assert response.status_code == 200
    assert response.context["doctor"] == cast.doctor
    assert free_link(visita, at(tomorrow(), 9)) in response.content.decode()
    form = client.get(
        url("booking_new"),
        {"doctor": cast.doctor.pk, "start": epoch(at(tomorrow(), 9)), "type": visita.pk},
    )
    assert form.status_code == 200
    response = client.post(
        url("booking_new"), booking_form(cast.doctor, cast.patient, visita, at(tomorrow(), 9))
    )
    assert response.status_code == 302
    assert Booking.objects.filter(clinician=cast.doctor, patient=cast.patient).count() == 1


def test_secretary_of_the_team_opens_the_first_doctors_calendar_by_default(
    client, login, team_secretary
):
    login(team_secretary)
    response = client.get(url("calendar"))
    assert response.context["doctor"].user.last_name == "Bianchi"


def test_secretary_outside_the_team_sees_no_calendar_and_gets_404_on_bookings(
    client, login, cast, booking, visita
):
    login(cast.secretary)
    response = client.get(url("calendar"), calendar_of(cast.doctor))
    # The page itself opens, empty, and tells her why (access.calendar_doctors is empty).
    assert response.status_code == 200
    assert response.context["doctors"] == [] and response.context["columns"] == []
    assert "You don’t work with any doctor’s calendar yet" in response.content.decode()
    assert "Esposito" not in response.content.decode()
    assert client.get(url("booking_new"), {"doctor": cast.doctor.pk}).status_code == 404
    data = booking_form(cast.doctor, cast.patient, visita, at(tomorrow(), 9))
    assert client.post(url("booking_new"), data).status_code == 404
    assert client.get(url("booking_detail", booking.pk)).status_code == 404
    assert client.post(url("booking_action", booking.pk), {"action": "cancel"}).status_code == 404
    assert Booking.objects.count() == 1
    assert reload(booking).status == Booking.Status.BOOKED
    assert not AuditEvent.objects.filter(actor=cast.secretary.user).exists()


@pytest.mark.parametrize("who", ["clinic_admin", "patient", "operator"])
def test_administrators_patients_and_operators_get_404_on_the_calendar(
    client, login, cast, booking, visita, who
):
    login(getattr(cast, who))
    assert client.get(url("calendar")).status_code == 404
    assert client.get(url("calendar"), calendar_of(cast.doctor), headers=FETCH).status_code == 404
    assert client.get(url("booking_new"), {"doctor": cast.doctor.pk}).status_code == 404
    data = booking_form(cast.doctor, cast.patient, visita, at(tomorrow(), 9))
    assert client.post(url("booking_new"), data).status_code == 404
    assert client.get(url("booking_detail", booking.pk)).status_code == 404
    for action in ("cancel", "done"):
        response = client.post(url("booking_action", booking.pk), {"action": action})
        assert response.status_code == 404
    assert Booking.objects.count() == 1
    assert reload(booking).status == Booking.Status.BOOKED
    assert not AuditEvent.objects.filter(action="booking.read").exists()


def test_other_clinics_doctor_cannot_open_our_doctors_calendar(
    client, login, cast, booking, visita
):
    login(cast.other_doctor)
    response = client.get(url("calendar"), calendar_of(cast.doctor))
    # Asking for our doctor shows their own (empty) calendar instead.
    assert response.status_code == 200
    assert response.context["doctors"] == [cast.other_doctor]
    assert response.context["doctor"] == cast.other_doctor
    assert "Esposito" not in response.content.decode()
    assert client.get(url("booking_new"), {"doctor": cast.doctor.pk}).status_code == 404
    data = booking_form(cast.doctor, cast.patient, visita, at(tomorrow(), 9))
    assert client.post(url("booking_new"), data).status_code == 404
    assert client.get(url("booking_detail", booking.pk)).status_code == 404
    assert client.post(url("booking_action", booking.pk), {"action": "cancel"}).status_code == 404
    assert Booking.objects.count() == 1
    assert reload(booking).status == Booking.Status.BOOKED


def test_doctor_cannot_open_the_calendar_of_a_doctor_outside_their_teams(
    client, login, cast, loner, visita
):
    make_week(cast.clinic_admin, loner, [visita])
    patient = add_patient(loner, "Franco", "Neri")
    theirs = book(loner, patient, visita, at(tomorrow(), 9))
    login(cast.doctor)
    response = client.get(url("calendar"), calendar_of(loner))
    assert response.context["doctor"] == cast.doctor
    assert loner not in response.context["doctors"]
    assert "Neri" not in response.content.decode()
    assert client.get(url("booking_new"), {"doctor": loner.pk}).status_code == 404
    data = booking_form(loner, cast.patient, visita, at(tomorrow(), 10))
    assert client.post(url("booking_new"), data).status_code == 404
    assert client.get(url("booking_detail", theirs.pk)).status_code == 404
    assert client.post(url("booking_action", theirs.pk), {"action": "cancel"}).status_code == 404
    assert reload(theirs).status == Booking.Status.BOOKED


# --- the week view ----------------------------------------------------------------------------


def test_week_view_lists_free_slots_and_bookings(
    client, login, cast, booking, visita, videoconsulto
):
    cancelled = book(cast.doctor, cast.patient_of_doctor2, visita, at(tomorrow(), 11))
    services.booking_cancel(booking=cancelled, by=cast.doctor)
    login(cast.doctor)
    response = client.get(url("calendar"), calendar_of(cast.doctor))
    html = response.content.decode()
    monday = tomorrow() - timedelta(days=tomorrow().weekday())
    assert response.context["start"] == monday  # a week starts on Monday
    assert [c["day"] for c in response.context["columns"]] == [
        monday + timedelta(days=n) for n in range(7)
    ]
    assert len(day_columns(response)) == 7
    # Free slots, one link per type starting then.
    assert free_link(visita, at(tomorrow(), 9)) in html
    assert free_link(videoconsulto, at(tomorrow(), 9)) in html
    assert free_link(videoconsulto, at(tomorrow(), 9, 15)) in html
    # The booking, and no free slot in the time it holds.
    assert url("booking_detail", booking.pk) in html
    assert "<strong>Esposito Paolo</strong>" in html
    assert free_link(visita, at(tomorrow(), 10)) not in html
    assert free_link(videoconsulto, at(tomorrow(), 10, 15)) not in html
    assert free_link(visita, at(tomorrow(), 10, 20)) in html
    # A cancelled booking holds no time.
    assert "Conti" not in html
    assert free_link(visita, at(tomorrow(), 11)) in html


def test_the_days_parameter_chooses_how_many_days_are_shown(client, login, cast, week):
    login(cast.doctor)
    day = tomorrow()

    def shown(days):
        response = client.get(url("calendar"), calendar_of(cast.doctor, day, days=days))
        return [c["day"] for c in response.context["columns"]]

    assert shown(1) == [day]
    assert shown(3) == [day, day + timedelta(days=1), day + timedelta(days=2)]
    assert len(shown(99)) == 28
    assert shown("x")[0] == day - timedelta(days=day.weekday())  # the default: a week


def test_the_type_filter_shows_only_that_types_free_slots(
    client, login, cast, week, visita, videoconsulto
):
    login(cast.doctor)
    response = client.get(url("calendar"), calendar_of(cast.doctor, days=1, type=videoconsulto.pk))
    html = response.content.decode()
    assert free_link(videoconsulto, at(tomorrow(), 9)) in html
    assert "Book Visita at" not in html


def test_group_view_shows_the_doctors_of_the_practice_side_by_side(
    client, login, cast, team_secretary, week, week2, booking, videoconsulto
):
    shared = book(
        cast.doctor,
        cast.patient_of_doctor2,
        videoconsulto,
        at(tomorrow(), 12),
        contact_mode=ContactMode.VIDEO,
        participants=[cast.doctor2],
    )
    login(team_secretary)
    response = client.get(url("calendar"), {"group": "1", "start": tomorrow().isoformat()})
    assert response.status_code == 200
    assert response.context["group"] is True
    assert [(c["doctor"], c["day"]) for c in response.context["columns"]] == [
        (cast.doctor2, tomorrow()),
        (cast.doctor, tomorrow()),
    ]
    html = response.content.decode()
    assert '<span class="who">Dr. Marco Bianchi</span>' in html
    assert '<span class="who">Dr. Anna Rossi</span>' in html
    # The video visit shows in both calendars; in the participant's, with whom.
    assert html.count(url("booking_detail", shared.pk)) == 2
    assert "with Dr. Anna Rossi" in html
    assert html.count(url("booking_detail", booking.pk)) == 1


def test_group_view_needs_more_than_one_doctor(client, login, cast, loner, visita):
    make_week(cast.clinic_admin, loner, [visita])
    login(loner)
    response = client.get(url("calendar"), {"group": "1", "start": tomorrow().isoformat()})
    assert response.context["group"] is False
    assert [c["doctor"] for c in response.context["columns"]] == [loner] * 7


def test_the_fetch_variant_returns_only_the_grid(client, login, cast, booking, visita):
    login(cast.doctor)
    response = client.get(url("calendar"), calendar_of(cast.doctor), headers=FETCH)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "calendar-controls" not in html
    assert html.lstrip().startswith('<p class="hint">')
    assert '<div class="calendar-grid">' in html
    assert "<strong>Esposito Paolo</strong>" in html
    assert free_link(visita, at(tomorrow(), 9)) in html
    full = client.get(url("calendar"), calendar_of(cast.doctor)).content.decode()
    assert "<html" in full and 'id="calendar-live"' in full


# --- one appointment type for a whole day ----------------------------------------------------


def test_secretary_of_the_team_gives_a_day_one_appointment_type(
    client, login, cast, team_secretary, week, visita, videoconsulto
):
    login(team_secretary)
    day = tomorrow()
    data = {"doctor": cast.doctor.pk, "day": day.isoformat(), "type": videoconsulto.pk}
    response = client.post(url("day_type"), data)
    assert response.status_code == 302
    assert response.url == calendar_url(cast.doctor, day)
    with translation.override("en"):
        expected = f"Every free slot of {date_format(day, 'DATE_FORMAT')} is now Videoconsulto."
    assert messages_of(response) == [expected]
    assert DayType.objects.get().appointment_type == videoconsulto
    html = client.get(url("calendar"), calendar_of(cast.doctor, day, days=1)).content.decode()
    assert free_link(videoconsulto, at(day, 9)) in html
    assert "Book Visita at" not in html
    assert f'<option value="{videoconsulto.pk}" selected>All: Videoconsulto</option>' in html
    response = client.post(url("day_type"), {**data, "type": ""})
    assert messages_of(response)[-1] == "The day follows the week template again."
    assert not DayType.objects.exists()
    html = client.get(url("calendar"), calendar_of(cast.doctor, day, days=1)).content.decode()
    assert free_link(visita, at(day, 9)) in html


@pytest.mark.parametrize(
    "who", ["secretary", "clinic_admin", "patient", "operator", "other_doctor", "loner"]
)
def test_outsiders_cannot_set_the_type_of_a_day(
    client, login, cast, request, week, videoconsulto, who
):
    login(request.getfixturevalue(who) if who == "loner" else getattr(cast, who))
    data = {"doctor": cast.doctor.pk, "day": tomorrow().isoformat(), "type": videoconsulto.pk}
    assert client.post(url("day_type"), data).status_code == 404
    assert not DayType.objects.exists()


def test_setting_the_type_of_a_day_needs_a_post_and_a_date(
    client, login, cast, week, videoconsulto
):
    login(cast.doctor)
    data = {"doctor": cast.doctor.pk, "day": tomorrow().isoformat(), "type": videoconsulto.pk}
    assert client.get(url("day_type"), data).status_code == 405
    assert client.post(url("day_type"), {**data, "day": "someday"}).status_code == 404
    assert not DayType.objects.exists()


# --- query counts -----------------------------------------------------------------------------


def _queries(client, page, query, headers) -> int:
    client.get(page, query, headers=headers)  # the first request of a session differs
    with CaptureQueriesContext(connection) as captured:
        assert client.get(page, query, headers=headers).status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    ("viewer", "shown", "headers"),
    [
        ("doctor", "doctor", {}),
        ("doctor", "doctor", FETCH),
        ("doctor2", "doctor2", {}),  # a participant's week: the video visits they join
        ("team_secretary", "group", {}),
    ],
    ids=["week", "week-fetch", "participant-week", "group-week"],
)
def test_calendar_queries_do_not_grow_with_the_number_of_bookings(
    client,
    login,
    cast,
    request,
    week,
    week2,
    visita,
    videoconsulto,
    django_assert_max_num_queries,
    viewer,
    shown,
    headers,
):
    day = tomorrow()
    joined = {"contact_mode": ContactMode.VIDEO, "participants": [cast.doctor2]}

    def add(patient, hour, minute=0, **fields):
        kind = videoconsulto if fields else visita
        return book(cast.doctor, patient, kind, at(day, hour, minute), **fields)

    add(cast.patient, 8)
    add(cast.patient_of_doctor2, 8, 30, **joined)  # with the second doctor
    login(request.getfixturevalue(viewer) if viewer == "team_secretary" else getattr(cast, viewer))
    if shown == "group":
        query = {"group": "1", "days": "7", "start": day.isoformat()}
    else:
        query = {"doctor": getattr(cast, shown).pk, "start": day.isoformat()}
    page = url("calendar")
    baseline = _queries(client, page, query, headers)
    for n in range(6):
        patient = add_patient(cast.doctor, "Nuovo", f"Paziente{n}")
        add(patient, 9 + n)
        add(patient, 9 + n, 30, **joined)
    with django_assert_max_num_queries(baseline):
        response = client.get(page, query, headers=headers)
    assert response.content.decode().count("Paziente") >= 6


# --- booking from the calendar -------------------------------------------------------------


def test_booking_form_shows_the_chosen_slot_and_type(client, login, cast, week, videoconsulto):
    login(cast.doctor)
    response = client.get(
        url("booking_new"),
        {"doctor": cast.doctor.pk, "start": epoch(at(tomorrow(), 9, 15)), "type": videoconsulto.pk},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert f'value="{typed(at(tomorrow(), 9, 15))}"' in html
    assert f'<option value="{videoconsulto.pk}" selected>Videoconsulto</option>' in html
    # The second doctor of the group may join a video visit.
    assert response.context["form"].fields["participants"].queryset.get() == cast.doctor2


def test_patient_search_shows_only_visible_patients_that_are_not_archived(
    client, login, cast, week, loner
):
    add_patient(cast.doctor, "Giulia", "Ferri")
    add_patient(cast.doctor2, "Fabio", "Ferri")
    add_patient(cast.doctor, "Gina", "Ferri", archived="other")
    add_patient(loner, "Franco", "Ferri")
    add_patient(cast.other_doctor, "Fanny", "Ferri")
    login(cast.doctor)
    response = client.get(url("booking_new"), {"doctor": cast.doctor.pk, "q": "Ferri"})
    assert [p.first_name for p in response.context["found"]] == ["Fabio", "Giulia"]
    html = response.content.decode()
    assert "Giulia" in html and "Fabio" in html
    assert "Gina" not in html and "Franco" not in html and "Fanny" not in html


def test_secretary_books_through_the_form_and_returns_to_the_calendar(
    client, login, cast, team_secretary, week, visita
):
    login(team_secretary)
    starts = at(tomorrow(), 9)
    response = client.post(
        url("booking_new"), booking_form(cast.doctor, cast.patient, visita, starts)
    )
    assert response.status_code == 302
    assert response.url == calendar_url(cast.doctor, tomorrow())
    assert messages_of(response) == ["Paolo Esposito is booked for Visita."]
    booking = Booking.objects.get()
    assert (booking.clinician, booking.patient, booking.appointment_type) == (
        cast.doctor,
        cast.patient,
        visita,
    )
    assert booking.starts_at == starts and booking.ends_at == starts + timedelta(minutes=20)
    assert booking.contact_mode == ContactMode.IN_PERSON  # the type's default
    assert booking.source == Booking.Source.STAFF
    assert booking.booked_by == team_secretary.user
    assert booking.notes_for_patient == "Portare gli esami"
    page = client.get(response.url)
    assert "Paolo Esposito is booked for Visita." in page.content.decode()
    assert url("booking_detail", booking.pk) in page.content.decode()


def test_booking_a_video_visit_with_a_colleague(client, login, cast, week, videoconsulto):
    login(cast.doctor)
    data = booking_form(
        cast.doctor, cast.patient, videoconsulto, at(tomorrow(), 9), participants=[cast.doctor2.pk]
    )
    assert client.post(url("booking_new"), data).status_code == 302
    booking = Booking.objects.get()
    assert booking.contact_mode == ContactMode.VIDEO and booking.visit is not None
    assert sorted(booking.holds.values_list("clinician_id", flat=True)) == sorted(
        [cast.doctor.pk, cast.doctor2.pk]
    )


def test_booking_a_slot_already_taken_returns_to_the_calendar_with_the_message(
    client, login, cast, team_secretary, week, visita
):
    starts = at(tomorrow(), 9)
    book(cast.doctor, cast.patient_of_doctor2, visita, starts)
    login(team_secretary)
    response = client.post(
        url("booking_new"), booking_form(cast.doctor, cast.patient, visita, starts)
    )
    assert response.status_code == 302
    assert response.url == calendar_url(cast.doctor, tomorrow())
    assert messages_of(response) == [TAKEN]
    assert not Booking.objects.filter(patient=cast.patient).exists()


def test_a_time_outside_the_working_hours_is_refused_unless_ticked(
    client, login, cast, week, visita
):
    login(cast.doctor)
    early = at(tomorrow(), 7)
    response = client.post(
        url("booking_new"), booking_form(cast.doctor, cast.patient, visita, early)
    )
    assert response.status_code == 200
    errors = " ".join(response.context["form"].non_field_errors())
    assert "is not a time for Visita in this calendar" in errors
    assert "book outside the working hours on purpose" in errors
    assert 'class="form-errors"' in response.content.decode()
    assert not Booking.objects.exists()
    data = booking_form(cast.doctor, cast.patient, visita, early, outside_hours="on")
    response = client.post(url("booking_new"), data)
    assert response.status_code == 302
    assert Booking.objects.get().starts_at == early


def test_a_time_between_two_slots_is_outside_the_working_hours(client, login, cast, week, visita):
    login(cast.doctor)
    data = booking_form(cast.doctor, cast.patient, visita, at(tomorrow(), 9, 10))
    response = client.post(url("booking_new"), data)
    assert response.status_code == 200
    assert "is not a time for Visita" in " ".join(response.context["form"].non_field_errors())
    assert not Booking.objects.exists()


@pytest.mark.parametrize("whose", ["loner", "other_clinic", "archived"])
def test_a_patient_the_staff_member_does_not_see_cannot_be_booked(
    client, login, cast, team_secretary, week, visita, loner, whose
):
    patient = {
        "loner": lambda: add_patient(loner, "Franco", "Neri"),
        "other_clinic": lambda: cast.other_patient,
        "archived": lambda: add_patient(cast.doctor, "Gina", "Ferri", archived="other"),
    }[whose]()
    login(team_secretary)
    response = client.post(
        url("booking_new"), booking_form(cast.doctor, patient, visita, at(tomorrow(), 9))
    )
    assert response.status_code == 200
    assert list(response.context["form"].non_field_errors()) == ["Choose the patient."]
    assert response.context["patient"] is None
    assert not Booking.objects.exists()
    # Nor is the patient shown when picked by id.
    response = client.get(url("booking_new"), {"doctor": cast.doctor.pk, "patient": patient.pk})
    assert response.context["patient"] is None
    assert patient.last_name not in response.content.decode()


def test_a_malformed_doctor_in_the_booking_address_is_404(client, login, cast, week):
    login(cast.doctor)
    assert client.get(url("booking_new"), {"doctor": "abc"}).status_code == 404
    assert client.get(url("booking_new")).status_code == 404


# --- a booking: reading it, changing it ----------------------------------------------------


def test_opening_a_booking_is_audited(client, login, cast, team_secretary, booking):
    login(team_secretary)
    response = client.get(url("booking_detail", booking.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Visita: Esposito Paolo" in html
    event = AuditEvent.objects.get(action="booking.read")
    assert event.actor == team_secretary.user
    assert event.patient == cast.patient
    assert (event.target_type, event.target_id) == ("scheduling.booking", str(booking.pk))
    # Not started yet: it can be moved or cancelled, not marked done.
    assert 'value="change"' in html and 'value="cancel"' in html
    assert 'value="done"' not in html


def test_staff_cancel_a_booking(client, login, cast, booking, visita):
    login(cast.doctor)
    response = client.post(
        url("booking_action", booking.pk), {"action": "cancel", "reason": "Ha chiamato"}
    )
    assert response.status_code == 302
    assert response.url == calendar_url(cast.doctor, tomorrow())
    assert messages_of(response) == ["The booking is cancelled."]
    booking = reload(booking)
    assert booking.status == Booking.Status.CANCELLED
    assert booking.cancel_reason == "Ha chiamato"
    assert booking.cancelled_by == cast.doctor.user
    assert AuditEvent.objects.filter(action="booking.cancel", target_id=str(booking.pk)).exists()
    html = client.get(response.url).content.decode()
    assert "Esposito" not in html.split('<div class="calendar-grid">')[1]
    assert free_link(visita, at(tomorrow(), 10)) in html
    response = client.post(url("booking_action", booking.pk), {"action": "cancel"})
    assert response.url == url("booking_detail", booking.pk)
    assert messages_of(response) == ["Only a booked appointment can be cancelled."]


def test_staff_move_a_booking(client, login, cast, team_secretary, booking, visita):
    login(team_secretary)
    later = at(tomorrow(), 11)
    data = {"action": "change", "starts_at": typed(later), "kind": visita.pk}
    response = client.post(url("booking_action", booking.pk), {**data, "contact_mode": "video"})
    assert response.status_code == 302
    assert response.url == url("booking_detail", booking.pk)
    assert messages_of(response) == ["The booking is changed."]
    booking = reload(booking)
    assert booking.starts_at == later and booking.ends_at == later + timedelta(minutes=20)
    assert booking.contact_mode == ContactMode.VIDEO and booking.visit is not None
    assert booking.holds.get().starts_at == later


def test_moving_a_booking_outside_the_working_hours_is_refused_unless_ticked(
    client, login, cast, booking, visita
):
    login(cast.doctor)
    late = at(tomorrow(), 21)
    data = {
        "action": "change",
        "starts_at": typed(late),
        "kind": visita.pk,
        "contact_mode": "in_person",
    }
    response = client.post(url("booking_action", booking.pk), data)
    assert response.url == url("booking_detail", booking.pk)
    [message] = messages_of(response)
    assert "is not a time for Visita in this calendar" in message
    assert reload(booking).starts_at == at(tomorrow(), 10)
    response = client.post(url("booking_action", booking.pk), {**data, "outside_hours": "on"})
    assert messages_of(response)[-1] == "The booking is changed."
    assert reload(booking).starts_at == late


def test_moving_a_booking_onto_a_taken_time_shows_the_message(client, login, cast, booking, visita):
    book(cast.doctor, cast.patient_of_doctor2, visita, at(tomorrow(), 11))
    login(cast.doctor)
    data = {
        "action": "change",
        "starts_at": typed(at(tomorrow(), 11, 0)),
        "kind": visita.pk,
        "contact_mode": "in_person",
    }
    response = client.post(url("booking_action", booking.pk), data)
    assert messages_of(response) == [TAKEN]
    assert reload(booking).starts_at == at(tomorrow(), 10)


def test_a_change_with_a_bad_date_shows_the_message(client, login, cast, booking, visita):
    login(cast.doctor)
    data = {"action": "change", "starts_at": "soon", "kind": visita.pk, "contact_mode": "video"}
    response = client.post(url("booking_action", booking.pk), data)
    assert messages_of(response) == ["Check the date, the time and the type."]
    assert reload(booking).contact_mode == ContactMode.IN_PERSON


def test_a_booking_that_has_not_started_cannot_be_marked_done(client, login, cast, booking):
    login(cast.doctor)
    response = client.post(url("booking_action", booking.pk), {"action": "done"})
    assert response.url == url("booking_detail", booking.pk)
    assert messages_of(response) == [
        "An appointment can be marked done or missed once it has started."
    ]
    assert reload(booking).status == Booking.Status.BOOKED


@pytest.mark.parametrize("status", [Booking.Status.DONE, Booking.Status.NO_SHOW])
def test_a_started_booking_can_be_marked_done_or_no_show(client, login, cast, booking, status):
    move_to_the_past(booking)
    login(cast.doctor)
    page = client.get(url("booking_detail", booking.pk)).content.decode()
    assert 'value="done"' in page and 'value="no_show"' in page
    response = client.post(url("booking_action", booking.pk), {"action": status})
    assert messages_of(response) == ["The booking is marked."]
    assert reload(booking).status == status
    page = client.get(url("booking_detail", booking.pk)).content.decode()
    assert str(Booking.Status(status).label) in page


def test_an_unknown_booking_action_is_404(client, login, cast, booking):
    login(cast.doctor)
    for action in ("", "cancelled", "delete"):
        response = client.post(url("booking_action", booking.pk), {"action": action})
        assert response.status_code == 404
    assert reload(booking).status == Booking.Status.BOOKED


def test_booking_action_accepts_only_post(client, login, cast, booking):
    login(cast.doctor)
    assert client.get(url("booking_action", booking.pk), {"action": "cancel"}).status_code == 405
    assert reload(booking).status == Booking.Status.BOOKED


# --- calendar settings ------------------------------------------------------------------------


@pytest.fixture
def setup2(cast, week2, visita):
    """The second doctor's calendar configuration: template, a block, a plan, an absence."""
    today = rome_today()
    block = week2.blocks.get(weekday=0)
    plan = WorkPlan.objects.get(clinician=cast.doctor2)
    absence = services.absence_create(
        by=cast.clinic_admin,
        clinician=cast.doctor2,
        start_date=today + timedelta(days=20),
        end_date=today + timedelta(days=21),
    )
    return {"template": week2, "block": block, "plan": plan, "absence": absence}


def configuration(doctor):
    calendar = services.calendar_of(doctor)
    return {
        "templates": sorted(WeekTemplate.objects.filter(clinician=doctor).values_list("name")),
        "blocks": TemplateBlock.objects.filter(template__clinician=doctor).count(),
        "plans": sorted(WorkPlan.objects.filter(clinician=doctor).values_list("pk")),
        "absences": sorted(Absence.objects.filter(clinician=doctor).values_list("pk")),
        "online": calendar.is_online,
        "feed": calendar.feed_token_hash,
    }


def settings_posts(doctor, setup, kind):
    """Every configuration POST against `doctor`'s calendar and its objects."""
    later = rome_today() + timedelta(days=60)
    block = {"weekday": "6", "start_time": "21:00", "end_time": "22:00", "types": [kind.pk]}
    dates = {"start_date": later.isoformat(), "end_date": (later + timedelta(days=5)).isoformat()}
    return [
        (url("calendar_online"), {"online": "1"}),
        (url("calendar_feed_change"), {"create": "1"}),
        (url("calendar_feed_change"), {"revoke": "1"}),
        (url("template_create"), {"name": "Estate"}),
        (url("block_add", setup["template"].pk), block),
        (url("block_delete", setup["block"].pk), {}),
        (url("plan_create"), {"template": setup["template"].pk, **dates}),
        (url("plan_delete", setup["plan"].pk), {}),
        (url("absence_create"), {**dates, "reason": "Ferie"}),
        (url("absence_delete", setup["absence"].pk), {}),
    ]


def test_clinic_admin_configures_any_doctors_calendar(client, login, cast, week, setup2, visita):
    login(cast.clinic_admin)
    response = client.get(url("calendar_settings"))
    assert response.status_code == 200
    assert response.context["doctors"] == [cast.doctor2, cast.doctor]
    assert response.context["doctor"] == cast.doctor2  # the first, by name
    response = client.get(url("calendar_settings"), {"doctor": cast.doctor.pk})
    assert response.context["doctor"] == cast.doctor
    assert "Sempre" in response.content.decode()
    response = client.post(url("template_create"), {"doctor": cast.doctor2.pk, "name": "Estate"})
    assert response.url == f"{url('calendar_settings')}?doctor={cast.doctor2.pk}"
    assert messages_of(response) == ["The week template is created."]
    estate = WeekTemplate.objects.get(name="Estate")
    assert estate.clinician == cast.doctor2
    data = {
        "doctor": cast.doctor2.pk,
        "weekday": "5",
        "start_time": "21:00",
        "end_time": "22:00",
        "types": [visita.pk],
    }
    response = client.post(url("block_add", estate.pk), data)
    assert messages_of(response)[-1] == "The time block is added."
    response = client.post(url("plan_delete", setup2["plan"].pk), {"doctor": cast.doctor2.pk})
    assert messages_of(response)[-1] == "The work plan is removed."
    response = client.post(url("calendar_online"), {"doctor": cast.doctor2.pk, "online": "1"})
    assert messages_of(response)[-1] == "The calendar is open for online booking."
    assert services.calendar_of(cast.doctor2).is_online
    assert not WorkPlan.objects.filter(clinician=cast.doctor2).exists()
    assert estate.blocks.count() == 1


def test_doctor_configures_their_own_calendar(client, login, cast, week, visita):
    login(cast.doctor)
    today = rome_today()
    response = client.get(url("calendar_settings"))
    assert response.context["doctors"] == [cast.doctor]
    assert response.context["doctor"] == cast.doctor
    response = client.post(url("template_create"), {"doctor": cast.doctor.pk, "name": "Estate"})
    assert messages_of(response) == ["The week template is created."]
    estate = WeekTemplate.objects.get(name="Estate")
    dates = {
        "start_date": (today + timedelta(days=40)).isoformat(),
        "end_date": (today + timedelta(days=50)).isoformat(),
    }
    data = {"doctor": cast.doctor.pk, "template": estate.pk, **dates}
    response = client.post(url("plan_create"), data)
    assert messages_of(response)[-1] == "The work plan is added."
    response = client.post(url("absence_create"), {"doctor": cast.doctor.pk, **dates})
    assert messages_of(response)[-1] == "The absence is added."
    absence = Absence.objects.get(clinician=cast.doctor)
    response = client.post(url("absence_delete", absence.pk), {"doctor": cast.doctor.pk})
    assert messages_of(response)[-1] == "The absence is removed."
    assert WorkPlan.objects.filter(clinician=cast.doctor, template=estate).exists()
    assert not Absence.objects.exists()


def test_a_doctor_asking_for_a_colleagues_settings_gets_their_own(
    client, login, cast, week, setup2, visita
):
    login(cast.doctor)
    response = client.get(url("calendar_settings"), {"doctor": cast.doctor2.pk})
    assert response.status_code == 200
    assert response.context["doctor"] == cast.doctor
    assert response.context["doctors"] == [cast.doctor]
    before = configuration(cast.doctor2)
    statuses = {}
    for page, data in settings_posts(cast.doctor2, setup2, visita):
        statuses[page] = client.post(page, {"doctor": cast.doctor2.pk, **data}).status_code
    assert configuration(cast.doctor2) == before
    # The colleague's template, block, plan and absence are not found...
    for name in ("template", "block", "plan", "absence"):
        for page, status in statuses.items():
            if f"/{setup2[name].pk}/" in page and name in {"template": "templates"}.get(name, name):
                assert status == 404, page
    assert statuses[url("block_add", setup2["template"].pk)] == 404
    assert statuses[url("block_delete", setup2["block"].pk)] == 404
    assert statuses[url("plan_delete", setup2["plan"].pk)] == 404
    assert statuses[url("absence_delete", setup2["absence"].pk)] == 404
    # ...and the rest applies to the doctor's own calendar.
    assert statuses[url("template_create")] == 302
    assert WeekTemplate.objects.filter(clinician=cast.doctor, name="Estate").exists()
    assert Absence.objects.filter(clinician=cast.doctor, reason="Ferie").exists()


@pytest.mark.parametrize("who", ["secretary", "team_secretary", "patient", "operator"])
def test_secretaries_patients_and_operators_get_404_on_the_settings(
    client, login, cast, request, week, setup2, visita, who
):
    login(request.getfixturevalue(who) if who == "team_secretary" else getattr(cast, who))
    assert client.get(url("calendar_settings")).status_code == 404
    assert client.get(url("calendar_settings"), {"doctor": cast.doctor.pk}).status_code == 404
    assert client.get(url("type_new")).status_code == 404
    assert client.get(url("type_edit", visita.pk)).status_code == 404
    assert client.post(url("type_edit", visita.pk), {"name": "X"}).status_code == 404
    before = configuration(cast.doctor2), configuration(cast.doctor)
    for doctor in (cast.doctor, cast.doctor2):
        for page, data in settings_posts(doctor, setup2, visita):
            response = client.post(page, {"doctor": doctor.pk, **data})
            assert response.status_code == 404, page
    assert (configuration(cast.doctor2), configuration(cast.doctor)) == before
    assert AppointmentType.objects.get(pk=visita.pk).name == "Visita"


def test_other_clinics_doctor_cannot_configure_our_calendars(
    client, login, cast, week, setup2, visita
):
    login(cast.other_doctor)
    response = client.get(url("calendar_settings"), {"doctor": cast.doctor2.pk})
    assert response.context["doctor"] == cast.other_doctor
    assert "Sempre" not in response.content.decode()
    assert client.get(url("type_edit", visita.pk)).status_code == 404
    assert client.post(url("type_edit", visita.pk), {"name": "X"}).status_code == 404
    before = configuration(cast.doctor2), configuration(cast.doctor)
    statuses = {}
    for page, data in settings_posts(cast.doctor2, setup2, visita):
        statuses[page] = client.post(page, {"doctor": cast.doctor2.pk, **data}).status_code
    assert (configuration(cast.doctor2), configuration(cast.doctor)) == before
    assert statuses[url("block_add", setup2["template"].pk)] == 404
    assert statuses[url("block_delete", setup2["block"].pk)] == 404
    assert statuses[url("plan_delete", setup2["plan"].pk)] == 404
    assert statuses[url("absence_delete", setup2["absence"].pk)] == 404
    assert services.calendar_of(cast.other_doctor).is_online  # it went to their own calendar
    assert AppointmentType.objects.get(pk=visita.pk).name == "Visita"


# --- appointment types ------------------------------------------------------------------------


def type_form(**fields):
    data = {
        "name": "Controllo",
        "clinician": "",
        "duration_minutes": "30",
        "colour": "#aa3311",
        "offers_in_person": "on",
        "default_contact_mode": "in_person",
        "online_audience": "own",
        "min_notice_hours": "2",
        "max_days_ahead": "60",
        "cancel_deadline_hours": "24",
        "max_open_bookings": "2",
        "patient_information": "",
        "notify_on_booking": "on",
        "is_active": "on",
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def test_clinic_admin_creates_a_type_for_the_whole_clinic(client, login, cast):
    login(cast.clinic_admin)
    assert client.get(url("type_new")).status_code == 200
    response = client.post(url("type_new"), type_form())
    assert response.status_code == 302
    assert response.url == url("calendar_settings")
    assert messages_of(response) == ["The appointment type is saved."]
    kind = AppointmentType.objects.get(name="Controllo")
    assert (kind.clinic, kind.clinician, kind.duration_minutes) == (cast.clinic, None, 30)


def test_doctor_creates_and_edits_a_type_of_their_own(client, login, cast):
    login(cast.doctor)
    response = client.post(url("type_new"), type_form(clinician=""))
    assert response.status_code == 200
    assert response.context["form"].errors["clinician"] == ["This field is required."]
    response = client.post(url("type_new"), type_form(clinician=cast.doctor2.pk))
    assert response.status_code == 200 and "clinician" in response.context["form"].errors
    response = client.post(url("type_new"), type_form(clinician=cast.doctor.pk))
    assert response.status_code == 302
    kind = AppointmentType.objects.get(name="Controllo")
    assert kind.clinician == cast.doctor
    response = client.post(
        url("type_edit", kind.pk), type_form(clinician=cast.doctor.pk, name="Controllo breve")
    )
    assert response.status_code == 302
    assert AppointmentType.objects.get(pk=kind.pk).name == "Controllo breve"


def test_doctor_cannot_edit_a_clinic_wide_or_a_colleagues_type(client, login, cast, visita):
    theirs = make_type(cast.doctor2, clinician=cast.doctor2, name="Loro")
    login(cast.doctor)
    for kind in (visita, theirs):
        assert client.get(url("type_edit", kind.pk)).status_code == 404
        response = client.post(url("type_edit", kind.pk), type_form(clinician=cast.doctor.pk))
        assert response.status_code == 404
    assert AppointmentType.objects.get(pk=theirs.pk).clinician == cast.doctor2
    login(cast.clinic_admin)
    assert client.get(url("type_edit", theirs.pk)).status_code == 200


@pytest.mark.parametrize("language", ["en", "it", "fr", "nb"])
def test_a_type_without_a_contact_mode_is_refused_in_the_users_language(
    client, login, cast, language
):
    cast.clinic_admin.user.language = language
    cast.clinic_admin.user.save(update_fields=["language"])
    login(cast.clinic_admin)
    response = client.post(url("type_new"), type_form(offers_in_person=None))
    assert response.status_code == 200
    with translation.override(language):
        expected = gettext("Offer at least one contact mode.")
    assert list(response.context["form"].non_field_errors()) == [expected]
    assert expected in text(response)
    assert not AppointmentType.objects.filter(name="Controllo").exists()


def test_overlapping_blocks_are_refused_and_nothing_is_created(client, login, cast, week, visita):
    login(cast.clinic_admin)
    data = {
        "doctor": cast.doctor.pk,
        "weekday": "0",
        "start_time": "19:00",
        "end_time": "21:00",
        "types": [visita.pk],
    }
    response = client.post(url("block_add", week.pk), data)
    assert response.url == f"{url('calendar_settings')}?doctor={cast.doctor.pk}"
    assert messages_of(response) == ["This block overlaps Monday 08:00–20:00 of the same day."]
    assert week.blocks.count() == 7
    page = client.get(response.url)
    assert "This block overlaps Monday 08:00–20:00 of the same day." in text(page)


def test_a_block_ending_before_it_starts_is_refused(client, login, cast, week, visita):
    login(cast.doctor)
    data = {
        "doctor": cast.doctor.pk,
        "weekday": "0",
        "start_time": "22:00",
        "end_time": "21:00",
        "types": [visita.pk],
    }
    response = client.post(url("block_add", week.pk), data)
    assert messages_of(response) == ["A time block must end after it starts."]
    assert week.blocks.count() == 7


def test_a_work_plan_ending_before_it_starts_is_refused(client, login, cast, week):
    login(cast.doctor)
    start = rome_today() + timedelta(days=40)
    data = {
        "doctor": cast.doctor.pk,
        "template": week.pk,
        "start_date": start.isoformat(),
        "end_date": (start - timedelta(days=1)).isoformat(),
    }
    response = client.post(url("plan_create"), data)
    assert response.url == f"{url('calendar_settings')}?doctor={cast.doctor.pk}"
    assert messages_of(response) == ["A work plan must end on or after its first day."]
    assert WorkPlan.objects.filter(clinician=cast.doctor).count() == 1


def test_an_overlapping_work_plan_is_refused(client, login, cast, week):
    login(cast.doctor)
    today = rome_today()
    data = {
        "doctor": cast.doctor.pk,
        "template": week.pk,
        "start_date": (today + timedelta(days=30)).isoformat(),
        "end_date": (today + timedelta(days=40)).isoformat(),
    }
    response = client.post(url("plan_create"), data)
    [message] = messages_of(response)
    assert message.startswith("This work plan overlaps another one (Sempre ")
    assert WorkPlan.objects.filter(clinician=cast.doctor).count() == 1


# --- why can't a patient book online? ------------------------------------------------------


def obstacles_shown(response) -> list[str]:
    return [o.message for o in response.context["check"]["obstacles"]]


def test_why_not_lists_the_obstacles_of_a_type_not_offered_online(
    client, login, cast, week, visita
):
    controllo = make_type(cast.clinic_admin, name="Controllo", bookable_online=False)
    services.calendar_set_online(by=cast.doctor, clinician=cast.doctor, online=False)
    login(cast.doctor)
    response = client.get(
        url("calendar_settings"), {"doctor": cast.doctor.pk, "check_type": controllo.pk}
    )
    expected = [
        "The calendar of Dr. Anna Rossi is not open for online booking.",
        "Controllo cannot be booked online.",
        "Controllo is in none of the week templates of Dr. Anna Rossi.",
    ]
    assert obstacles_shown(response) == expected
    html = text(response)
    for message in expected:
        assert f"<li>{message}</li>" in html
    assert "Nothing stands in the way" not in html


def test_why_not_says_nothing_stands_in_the_way_when_all_is_fine(client, login, cast, week, visita):
    login(cast.doctor)
    response = client.get(
        url("calendar_settings"), {"doctor": cast.doctor.pk, "check_type": visita.pk}
    )
    assert obstacles_shown(response) == []
    assert "Nothing stands in the way: this can be booked online now." in text(response)
    # With a patient of the group practice too; then blocked by an operator.
    check = {"doctor": cast.doctor.pk, "check_type": visita.pk}
    response = client.get(
        url("calendar_settings"), {**check, "check_patient": cast.patient_of_doctor2.pk}
    )
    assert response.context["check"]["patient"] == cast.patient_of_doctor2
    assert "Nothing stands in the way" in text(response)
    patient_block(
        operator=cast.operator,
        patient=cast.patient_of_doctor2,
        area=PatientBlock.Area.AGENDA,
        reason="Troppe prenotazioni",
    )
    response = client.get(
        url("calendar_settings"), {**check, "check_patient": cast.patient_of_doctor2.pk}
    )
    assert obstacles_shown(response) == ["An operator has blocked this patient's online booking."]
    assert "An operator has blocked this patient's online booking." in text(response)


def test_why_not_finds_only_patients_the_staff_member_sees(client, login, cast, week, visita):
    add_patient(cast.other_doctor, "Paola", "Esposito")
    login(cast.doctor)
    response = client.get(
        url("calendar_settings"),
        {"doctor": cast.doctor.pk, "check_type": visita.pk, "check_q": "Esposito"},
    )
    assert response.context["check"]["found"] == [cast.patient]
    login(cast.clinic_admin)  # administrators do not see patients: no search
    response = client.get(
        url("calendar_settings"),
        {"doctor": cast.doctor.pk, "check_type": visita.pk, "check_q": "Esposito"},
    )
    assert response.context["check"]["found"] == []
    assert response.context["check"]["can_pick_patient"] is False
    assert obstacles_shown(response) == []


# --- the iCal feed ----------------------------------------------------------------------------


def create_feed(client, doctor) -> str:
    response = client.post(url("calendar_feed_change"), {"doctor": doctor.pk, "create": "1"})
    assert response.url == f"{url('calendar_settings')}?doctor={doctor.pk}"
    page = client.get(response.url)
    address = page.context["feed_url"]
    assert address and address in page.content.decode()
    pattern = re.escape("http://testserver" + url("calendar_feed", "TOKEN"))
    match = re.fullmatch(pattern.replace("TOKEN", r"([\w-]+)"), address)
    assert match, address
    return match.group(1)


def test_doctor_creates_a_feed_that_is_shown_once_and_lists_their_bookings(
    client, login, cast, booking, week2, visita
):
    book(cast.doctor2, cast.patient_of_doctor2, visita, at(tomorrow(), 9))
    login(cast.doctor)
    token = create_feed(client, cast.doctor)
    again = client.get(url("calendar_settings"))
    assert again.context["feed_url"] == "" and token not in again.content.decode()
    assert Calendar.objects.get(clinician=cast.doctor).feed_token_hash not in ("", token)
    response = Client().get(url("calendar_feed", token))  # a phone: no session
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar"
    assert response["Cache-Control"] == "private, no-store"
    ics = response.content.decode()
    assert ics.startswith("BEGIN:VCALENDAR")
    assert "SUMMARY:Visita: Paolo Esposito" in ics
    assert f"UID:{booking.pk}@consulta" in ics
    assert "Conti" not in ics  # the colleague's booking


def test_revoking_the_feed_makes_its_address_404(client, login, cast, booking):
    login(cast.doctor)
    token = create_feed(client, cast.doctor)
    response = client.post(url("calendar_feed_change"), {"doctor": cast.doctor.pk, "revoke": "1"})
    assert messages_of(response) == ["The calendar feed address no longer works."]
    assert Client().get(url("calendar_feed", token)).status_code == 404


def test_a_new_feed_address_stops_the_old_one(client, login, cast, booking):
    login(cast.doctor)
    old = create_feed(client, cast.doctor)
    new = create_feed(client, cast.doctor)
    assert old != new
    assert Client().get(url("calendar_feed", old)).status_code == 404
    assert Client().get(url("calendar_feed", new)).status_code == 200


def test_a_random_feed_token_is_404(client, cast, booking):
    assert client.get(url("calendar_feed", "not-a-token")).status_code == 404
    assert client.get(url("calendar_feed", "x" * 43)).status_code == 404


def test_only_the_clinician_can_create_their_feed(client, login, cast, booking):
    login(cast.clinic_admin)
    page = client.get(url("calendar_settings"), {"doctor": cast.doctor.pk})
    assert page.context["is_own"] is False
    assert 'name="create"' not in page.content.decode()
    response = client.post(url("calendar_feed_change"), {"doctor": cast.doctor.pk, "create": "1"})
    assert response.url == f"{url('calendar_settings')}?doctor={cast.doctor.pk}"
    assert messages_of(response) == ["Only the clinician can create their calendar feed."]
    assert client.get(response.url).context["feed_url"] == ""
    assert services.calendar_of(cast.doctor).feed_token_hash == ""


def test_clinic_admin_can_stop_a_doctors_feed(client, login, cast, booking):
    login(cast.doctor)
    token = create_feed(client, cast.doctor)
    login(cast.clinic_admin)
    page = client.get(url("calendar_settings"), {"doctor": cast.doctor.pk})
    assert 'name="revoke"' in page.content.decode()
    client.post(url("calendar_feed_change"), {"doctor": cast.doctor.pk, "revoke": "1"})
    assert Client().get(url("calendar_feed", token)).status_code == 404


# --- the patient's side -----------------------------------------------------------------------


def test_patient_sees_the_doctors_and_types_they_can_book_online(
    client, login, cast, week, week2, visita, videoconsulto
):
    login(cast.patient)
    response = client.get(url("book_online"))
    assert response.status_code == 200
    # The second doctor's calendar is not open for online booking.
    assert response.context["choices"] == {cast.doctor: [videoconsulto, visita]}
    html = response.content.decode()
    assert url("book_online_slots", cast.doctor.pk, visita.pk) in html
    assert url("book_online_slots", cast.doctor.pk, videoconsulto.pk) in html
    assert url("book_online_slots", cast.doctor2.pk, visita.pk) not in html


def test_patient_sees_the_free_times(client, login, cast, booking, visita):
    login(cast.patient)
    response = client.get(url("book_online_slots", cast.doctor.pk, visita.pk))
    assert response.status_code == 200
    starts = slot_starts(response)
    assert epoch(at(tomorrow(), 9)) in starts
    assert epoch(at(tomorrow(), 10, 20)) in starts
    assert epoch(at(tomorrow(), 10)) not in starts  # booked
    assert starts == sorted(starts)
    days = list(response.context["days"])
    assert tomorrow() in days and len(days) <= 14


def test_patient_books_a_free_time_online(client, login, cast, week, visita):
    login(cast.patient)
    starts = at(tomorrow(), 9)
    response = client.post(
        url("book_online_slots", cast.doctor.pk, visita.pk),
        {"start": epoch(starts), "contact_mode": "video"},
    )
    assert response.status_code == 302
    assert response.url == url("my_bookings")
    assert messages_of(response) == ["Your appointment is booked. A confirmation is on its way."]
    booking = Booking.objects.get()
    assert (booking.patient, booking.clinician, booking.appointment_type) == (
        cast.patient,
        cast.doctor,
        visita,
    )
    assert booking.starts_at == starts and booking.source == Booking.Source.ONLINE
    assert booking.contact_mode == ContactMode.VIDEO and booking.visit is not None
    assert booking.booked_by == cast.patient.user
    page = client.get(response.url)
    assert page.context["upcoming"] == [booking]


def test_a_time_taken_meanwhile_sends_the_patient_back_with_the_message(
    client, login, cast, week, visita
):
    starts = at(tomorrow(), 9)
    book(cast.doctor, cast.patient_of_doctor2, visita, starts)
    login(cast.patient)
    page = url("book_online_slots", cast.doctor.pk, visita.pk)
    response = client.post(page, {"start": epoch(starts)})
    assert response.status_code == 302 and response.url == page
    assert messages_of(response) == [TAKEN]
    assert not Booking.objects.filter(patient=cast.patient).exists()


def test_a_patient_must_choose_a_time(client, login, cast, week, visita):
    login(cast.patient)
    page = url("book_online_slots", cast.doctor.pk, visita.pk)
    response = client.post(page, {"start": "tomorrow"})
    assert response.url == page
    assert messages_of(response) == ["Choose one of the free times."]
    assert not Booking.objects.exists()


def test_a_patient_blocked_in_the_agenda_sees_the_block_and_cannot_book(
    client, login, cast, week, visita
):
    patient_block(
        operator=cast.operator,
        patient=cast.patient,
        area=PatientBlock.Area.AGENDA,
        reason="Prenotazioni non presentate",
    )
    blocked = (
        "Your clinic has restricted this for your account: Agenda (booking on their own). "
        "Please contact the clinic."
    )
    login(cast.patient)
    response = client.get(url("book_online"))
    assert response.context["blocked"] == blocked
    html = text(response)
    assert blocked in html
    assert url("book_online_slots", cast.doctor.pk, visita.pk) not in html
    page = url("book_online_slots", cast.doctor.pk, visita.pk)
    response = client.get(page)
    assert "An operator has blocked this patient's online booking." in text(response)
    assert slot_starts(response) == []
    response = client.post(page, {"start": epoch(at(tomorrow(), 9))})
    assert response.url == page
    assert messages_of(response) == [blocked]
    assert not Booking.objects.exists()


@pytest.mark.parametrize("pair", ["offline_calendar", "offline_type", "own_patients_only"])
def test_a_doctor_and_type_the_patient_may_not_book_is_404(
    client, login, cast, week, week2, visita, pair
):
    patient = cast.patient
    if pair == "offline_calendar":
        doctor, kind = cast.doctor2, visita
    else:  # in the doctor's week templates, but not online / not for this patient
        doctor = cast.doctor
        if pair == "offline_type":
            kind = make_type(cast.clinic_admin, name="Controllo", bookable_online=False)
        else:
            patient = cast.patient_of_doctor2
            kind = make_type(cast.doctor, clinician=doctor, name="Solo miei", online_audience="own")
        template = services.week_template_create(by=doctor, clinician=doctor, name="Altro")
        services.template_block_add(
            by=doctor,
            template=template,
            weekday=0,
            start_time=time(21),
            end_time=time(22),
            types=[kind],
        )
    page = url("book_online_slots", doctor.pk, kind.pk)
    if pair == "own_patients_only":  # the doctor's own patient may
        login(cast.patient)
        assert client.get(page).status_code == 200
    login(patient)
    assert client.get(page).status_code == 404
    assert client.post(page, {"start": epoch(at(tomorrow(), 9))}).status_code == 404
    assert not Booking.objects.exists()


def test_other_clinics_patient_cannot_book_our_doctor(client, login, cast, week, visita):
    login(cast.other_patient)
    assert client.get(url("book_online")).context["choices"] == {}
    page = url("book_online_slots", cast.doctor.pk, visita.pk)
    assert client.get(page).status_code == 404
    assert client.post(page, {"start": epoch(at(tomorrow(), 9))}).status_code == 404
    assert not Booking.objects.exists()


def test_my_bookings_lists_upcoming_and_past(client, login, cast, booking, visita, videoconsulto):
    later = book(cast.doctor, cast.patient, visita, at(rome_today() + timedelta(days=5), 9))
    past = move_to_the_past(book(cast.doctor, cast.patient, visita, at(tomorrow(), 9)))
    cancelled = book(cast.doctor, cast.patient, videoconsulto, at(tomorrow(), 12))
    services.booking_cancel(booking=cancelled, by=cast.doctor)
    book(cast.doctor, cast.patient_of_doctor2, visita, at(tomorrow(), 15))  # someone else's
    login(cast.patient)
    response = client.get(url("my_bookings"))
    assert response.status_code == 200
    assert response.context["upcoming"] == [booking, later]
    assert response.context["past"] == [cancelled, past]  # newest first
    html = response.content.decode()
    assert url("my_booking_cancel", later.pk) in html  # five days ahead: before the deadline
    assert url("my_booking_cancel", cancelled.pk) not in html
    assert "· Cancelled</li>" in html and "· Booked</li>" in html
    assert "Conti" not in html


def test_patient_cancels_a_booking_before_the_deadline(client, login, cast, week, visita):
    booking = book(cast.doctor, cast.patient, visita, at(rome_today() + timedelta(days=5), 9))
    login(cast.patient)
    response = client.post(url("my_booking_cancel", booking.pk))
    assert response.status_code == 302 and response.url == url("my_bookings")
    assert messages_of(response) == ["Your appointment is cancelled."]
    booking = reload(booking)
    assert booking.status == Booking.Status.CANCELLED
    assert booking.cancelled_by == cast.patient.user
    assert booking.cancel_reason == "Cancelled online"
    assert booking.holds.get().active is False


def test_patient_cannot_cancel_online_after_the_deadline(client, login, cast, week, visita):
    AppointmentType.objects.filter(pk=visita.pk).update(cancel_deadline_hours=240)
    booking = book(cast.doctor, cast.patient, visita, at(rome_today() + timedelta(days=5), 9))
    login(cast.patient)
    page = client.get(url("my_bookings")).content.decode()
    assert url("my_booking_cancel", booking.pk) not in page
    assert "Too late to cancel online: please call the clinic." in page
    response = client.post(url("my_booking_cancel", booking.pk))
    assert response.url == url("my_bookings")
    assert messages_of(response) == [
        "This booking can no longer be cancelled online (up to 240 hours before). "
        "Please call the clinic."
    ]
    assert reload(booking).status == Booking.Status.BOOKED


def test_another_patients_booking_is_404(client, login, cast, booking):
    for who in (cast.patient_of_doctor2, cast.other_patient):
        login(who)
        assert client.post(url("my_booking_cancel", booking.pk)).status_code == 404
        assert booking.pk not in [b.pk for b in client.get(url("my_bookings")).context["upcoming"]]
    assert reload(booking).status == Booking.Status.BOOKED


def test_my_booking_cancel_accepts_only_post(client, login, cast, booking):
    login(cast.patient)
    assert client.get(url("my_booking_cancel", booking.pk)).status_code == 405
    assert reload(booking).status == Booking.Status.BOOKED


@pytest.mark.parametrize("who", ["doctor", "secretary", "clinic_admin", "operator", "other_doctor"])
def test_staff_and_operators_get_404_on_the_patient_pages(client, login, cast, booking, who):
    login(getattr(cast, who))
    kind = booking.appointment_type
    assert client.get(url("book_online")).status_code == 404
    page = url("book_online_slots", cast.doctor.pk, kind.pk)
    assert client.get(page).status_code == 404
    assert client.post(page, {"start": epoch(at(tomorrow(), 9))}).status_code == 404
    assert client.get(url("my_bookings")).status_code == 404
    assert client.post(url("my_booking_cancel", booking.pk)).status_code == 404
    assert Booking.objects.get().status == Booking.Status.BOOKED


# --- the types' colours -----------------------------------------------------------------------


def css_ids(response) -> set[int]:
    return {int(pk) for pk in re.findall(r"^\.type-(\d+) \{", response.content.decode(), re.M)}


def test_type_css_has_a_rule_for_each_of_the_clinics_types_only(
    client, login, cast, visita, videoconsulto
):
    theirs = make_type(cast.other_doctor, clinician=cast.other_doctor, name="Consultation")
    login(cast.doctor)
    response = client.get(url("appointment_type_css"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/css"
    assert css_ids(response) == {visita.pk, videoconsulto.pk}
    body = response.content.decode()
    assert f".type-{visita.pk} {{ --type-colour: #2f6fde; }}" in body
    assert f".type-{videoconsulto.pk} {{ --type-colour: #11aa33; }}" in body
    login(cast.patient)  # the patient's clinic
    assert css_ids(client.get(url("appointment_type_css"))) == {visita.pk, videoconsulto.pk}
    login(cast.other_patient)
    assert css_ids(client.get(url("appointment_type_css"))) == {theirs.pk}


def test_type_css_is_404_without_a_clinic(client, login, cast, visita):
    login(cast.operator)
    assert client.get(url("appointment_type_css")).status_code == 404


def free_time_link(doctor, kind, moment) -> str:
    """A free slot's link in "Find a free time": book it with this doctor, type and start."""
    return (
        f"{reverse('booking_new')}?doctor={doctor.pk}&amp;start={epoch(moment)}"
        f'&amp;type={kind.pk}">{moment:%H:%M} {kind.name}</a>'
    )


def test_find_a_free_time_lists_every_free_slot_of_the_group_by_day_and_clinician(
    client, login, cast, team_secretary, booking, week, week2, visita, videoconsulto
):
    login(team_secretary)
    response = client.get(url("free_times"), {"start": tomorrow().isoformat(), "days": 1})
    html = response.content.decode()
    assert response.status_code == 200
    assert free_time_link(cast.doctor, visita, at(tomorrow(), 9)) in html
    assert free_time_link(cast.doctor2, videoconsulto, at(tomorrow(), 9, 15)) in html
    assert free_time_link(cast.doctor, visita, at(tomorrow(), 10)) not in html  # booked
    assert free_time_link(cast.doctor2, visita, at(tomorrow(), 10)) in html
    assert html.count('<section class="free-day">') == 1


def test_find_a_free_time_narrows_to_one_clinician_and_one_type(
    client, login, cast, team_secretary, week, week2, visita, videoconsulto
):
    login(team_secretary)
    params = {"start": tomorrow().isoformat(), "days": 2, "doctor": cast.doctor2.pk}
    html = client.get(url("free_times"), {**params, "type": videoconsulto.pk}).content.decode()
    assert free_time_link(cast.doctor2, videoconsulto, at(tomorrow(), 9)) in html
    assert f"doctor={cast.doctor.pk}&amp;" not in html
    assert f'type={visita.pk}"' not in html
    assert html.count('<section class="free-day">') == 2


def test_find_a_free_time_fetch_returns_only_the_list(client, login, cast, week, visita):
    login(cast.doctor)
    response = client.get(
        url("free_times"),
        {"start": tomorrow().isoformat(), "days": 1},
        headers={"X-Requested-With": "fetch"},
    )
    html = response.content.decode()
    assert "<html" not in html
    assert free_time_link(cast.doctor, visita, at(tomorrow(), 8)) in html


@pytest.mark.parametrize("name", ["calendar", "free_times", "patient_list"])
def test_pages_that_also_give_their_list_alone_vary_on_the_fetch_header(client, login, cast, name):
    """The same address gives the whole page, or the part that a search or a live refresh
    fetches: without Vary, the browser showed that part alone when the user came Back."""
    login(cast.doctor)
    for headers in ({}, {"X-Requested-With": "fetch"}):
        response = client.get(url(name), headers=headers)
        assert response.status_code == 200
        assert "X-Requested-With" in response["Vary"]


def test_find_a_free_time_never_shows_the_past_or_other_clinics(client, login, cast, week, visita):
    login(cast.other_doctor)
    assert client.get(url("free_times")).status_code == 200
    assert f"doctor={cast.doctor.pk}&amp;" not in client.get(url("free_times")).content.decode()
    login(cast.doctor)
    yesterday = (rome_today() - timedelta(days=1)).isoformat()
    response = client.get(url("free_times"), {"start": yesterday, "days": 1})
    assert response.context["start"] == rome_today()


@pytest.mark.parametrize("who", ["clinic_admin", "patient", "operator"])
def test_find_a_free_time_is_404_for_those_who_do_not_book(client, login, cast, who):
    login(getattr(cast, who))
    assert client.get(url("free_times")).status_code == 404


def test_a_patient_added_while_booking_comes_back_chosen_in_the_booking(
    client, login, cast, team_secretary, week, visita
):
    from consulta.patients.models import Patient
    from tests.patients.test_views import create_form

    login(team_secretary)
    start = epoch(at(tomorrow(), 9))
    page = client.get(
        url("booking_new"), {"doctor": cast.doctor.pk, "start": start, "type": visita.pk}
    )
    back = page.context["back_here"]
    assert back.startswith(url("booking_new") + "?")
    assert f'href="{url("patient_create")}?next=' in page.content.decode()
    response = client.post(url("patient_create"), {**create_form(cast.doctor), "next": back})
    patient = Patient.objects.get(last_name="Rossi", first_name="Mario")
    assert response.status_code == 302
    assert response["Location"] == f"{back}&patient={patient.pk}"
    chosen = client.get(response["Location"])
    assert chosen.context["patient"] == patient


def test_adding_a_patient_never_goes_back_to_another_site(client, login, cast, team_secretary):
    from consulta.patients.models import Patient
    from tests.patients.test_views import create_form

    login(team_secretary)
    data = {**create_form(cast.doctor), "next": "https://evil.example/calendar/book/?x=1"}
    response = client.post(url("patient_create"), data)
    patient = Patient.objects.get(last_name="Rossi", first_name="Mario")
    assert response["Location"] == url("patient_detail", patient.pk)


def test_a_held_video_appointment_offers_only_done_or_missed(
    client, login, cast, week, videoconsulto
):
    booking = book(cast.doctor, cast.patient, videoconsulto, at(tomorrow(), 10))
    Visit.objects.filter(pk=booking.visit_id).update(
        status=Visit.Status.IN_CALL, started_at=timezone.now()
    )
    login(cast.doctor)
    html = client.get(url("booking_detail", booking.pk)).content.decode()
    assert "This appointment has taken place" in html
    assert 'value="change"' not in html and 'value="cancel"' not in html
    response = client.post(url("booking_action", booking.pk), {"action": "cancel"}, follow=True)
    assert "It can no longer be moved or cancelled" in response.content.decode()
    assert reload(booking).status == Booking.Status.BOOKED


def test_the_additional_participants_are_a_group_named_by_its_legend(client, login, cast, week):
    """A group of checkboxes: a fieldset and its legend, not every doctor's name inside one
    label with the group's name (nested labels are invalid, and read badly aloud)."""
    login(cast.doctor)
    html = client.get(url("booking_new") + f"?doctor={cast.doctor.pk}").content.decode()
    legend = html.index("<legend>Additional participants</legend>")
    assert html.rfind('<fieldset class="field">', 0, legend) != -1
    assert '<label class="inline"><div' not in html
