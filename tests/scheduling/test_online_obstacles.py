"""Every reason a patient cannot book online (`online_obstacles`), one at a time: the open
calendar has none, and each test breaks exactly one rule."""

from datetime import UTC, date, datetime, time, timedelta

import pytest

from consulta.accounts.models import StaffMember
from consulta.patients.models import PatientBlock
from consulta.patients.services import patient_block
from consulta.scheduling import services
from consulta.scheduling.models import AppointmentType
from tests.conftest import make_staff
from tests.patients.conftest import add_patient
from tests.scheduling.conftest import MONDAY, NOW, WEDNESDAY, local, make_plan, make_type, refused

pytestmark = pytest.mark.django_db


def obstacles(patient, clinician, kind, now=NOW) -> list[str]:
    return [
        o.code
        for o in services.online_obstacles(patient=patient, clinician=clinician, kind=kind, now=now)
    ]


@pytest.fixture
def loner(cast) -> StaffMember:
    """A doctor of the clinic in no care team, with a patient."""
    return make_staff(
        cast.clinic, "loner@alfa.test", StaffMember.Role.DOCTOR, "Luca", "Solitario", "Dr."
    )


def test_a_patient_of_the_doctor_with_an_open_calendar_meets_no_obstacle(cast, kind, open_calendar):
    assert (
        services.online_obstacles(patient=cast.patient, clinician=cast.doctor, kind=kind, now=NOW)
        == []
    )


def test_a_patient_blocked_from_the_agenda_cannot_book_online(cast, kind, open_calendar):
    patient_block(
        operator=cast.operator,
        patient=cast.patient,
        area=PatientBlock.Area.AGENDA,
        reason="Prenotazioni ripetute non rispettate",
    )

    assert obstacles(cast.patient, cast.doctor, kind) == ["blocked"]
    with refused("blocked"):
        services.booking_book_online(
            patient=cast.patient,
            clinician=cast.doctor,
            kind=kind,
            starts_at=local(WEDNESDAY, 9),
            now=NOW,
        )


def test_a_block_in_another_area_does_not_stop_online_booking(cast, kind, open_calendar):
    patient_block(
        operator=cast.operator,
        patient=cast.patient,
        area=PatientBlock.Area.CHAT,
        reason="Messaggi offensivi",
    )

    assert obstacles(cast.patient, cast.doctor, kind) == []


def test_a_calendar_not_open_for_online_booking_is_an_obstacle(cast, kind, open_calendar):
    services.calendar_set_online(by=cast.doctor, clinician=cast.doctor, online=False)

    assert obstacles(cast.patient, cast.doctor, kind) == ["calendar_offline"]


def test_a_type_not_bookable_online_is_an_obstacle(cast, kind, open_calendar):
    services.appointment_type_save(by=cast.clinic_admin, kind=kind, bookable_online=False)

    assert obstacles(cast.patient, cast.doctor, kind) == ["type_offline"]


def test_an_inactive_type_is_an_obstacle(cast, kind, open_calendar):
    services.appointment_type_save(by=cast.clinic_admin, kind=kind, is_active=False)

    assert obstacles(cast.patient, cast.doctor, kind) == ["type_offline"]


def test_a_type_in_none_of_the_doctors_templates_is_an_obstacle(cast, open_calendar):
    unused = make_type(cast.clinic_admin, name="Certificato")

    assert obstacles(cast.patient, cast.doctor, unused) == ["not_in_template"]


def test_a_colleagues_own_type_is_not_offered_by_the_doctor(cast, open_calendar):
    theirs = make_type(cast.doctor2, name="Ecografia", clinician=cast.doctor2)

    assert obstacles(cast.patient, cast.doctor, theirs) == ["not_offered", "not_in_template"]


def test_a_type_whose_templates_no_work_plan_applies_in_the_window_is_an_obstacle(
    cast, kind, open_calendar
):
    # The open calendar's plan ends on 31 May 2027; in August nothing is planned.
    august = datetime(2027, 8, 2, 7, 0, tzinfo=UTC)

    assert obstacles(cast.patient, cast.doctor, kind, now=august) == ["not_planned"]


def test_a_template_applied_by_no_work_plan_is_an_obstacle(cast):
    services.calendar_set_online(by=cast.doctor, clinician=cast.doctor, online=True)
    kind = make_type(cast.clinic_admin)
    template = services.week_template_create(by=cast.doctor, clinician=cast.doctor, name="Mai")
    services.template_block_add(
        by=cast.doctor,
        template=template,
        weekday=0,
        start_time=time(9),
        end_time=time(12),
        types=[kind],
    )

    assert obstacles(cast.patient, cast.doctor, kind) == ["not_planned"]


@pytest.mark.parametrize(
    ("audience", "doctors_patient", "group_patient", "clinic_patient"),
    [
        (AppointmentType.Audience.OWN, True, False, False),
        (AppointmentType.Audience.GROUP, True, True, False),
        (AppointmentType.Audience.CLINIC, True, True, True),
    ],
)
def test_the_audience_of_a_type_says_which_patients_may_book_it_online(
    cast, kind, open_calendar, loner, audience, doctors_patient, group_patient, clinic_patient
):
    services.appointment_type_save(
        by=cast.clinic_admin, kind=kind, online_audience=audience, max_open_bookings=0
    )
    loners_patient = add_patient(loner, "Nino", "Galli")

    def may_book(patient):
        codes = obstacles(patient, cast.doctor, kind)
        assert codes in ([], ["not_allowed"])
        return codes == []

    assert may_book(cast.patient) is doctors_patient
    assert may_book(cast.patient_of_doctor2) is group_patient
    assert may_book(loners_patient) is clinic_patient


def test_a_patient_of_doctor2_books_group_types_with_the_doctor_but_not_own_types(
    cast, kind, open_calendar
):
    own = make_type(cast.doctor, name="Controllo", clinician=cast.doctor, online_audience="own")
    services.template_block_add(
        by=cast.doctor,
        template=open_calendar.template,
        weekday=5,
        start_time=time(9),
        end_time=time(12),
        types=[own],
    )

    assert obstacles(cast.patient_of_doctor2, cast.doctor, kind) == []
    assert obstacles(cast.patient_of_doctor2, cast.doctor, own) == ["not_allowed"]
    assert obstacles(cast.patient, cast.doctor, own) == []
    with refused("not_allowed"):
        services.booking_book_online(
            patient=cast.patient_of_doctor2,
            clinician=cast.doctor,
            kind=own,
            starts_at=local(date(2027, 3, 6), 9),
            now=NOW,
        )


@pytest.mark.parametrize("audience", list(AppointmentType.Audience))
def test_patients_of_another_clinic_and_archived_patients_may_never_book_online(
    cast, kind, open_calendar, audience
):
    services.appointment_type_save(by=cast.clinic_admin, kind=kind, online_audience=audience)
    archived = add_patient(cast.doctor, "Ada", "Archiviata", archived="Trasferita")

    assert "not_allowed" in obstacles(cast.other_patient, cast.doctor, kind)
    assert "not_allowed" in obstacles(archived, cast.doctor, kind)


def test_a_patient_at_the_limit_of_open_bookings_cannot_book_more(cast, kind, open_calendar):
    for hour in (9, 10):
        services.booking_book_online(
            patient=cast.patient,
            clinician=cast.doctor,
            kind=kind,
            starts_at=local(WEDNESDAY, hour),
            now=NOW,
        )

    assert obstacles(cast.patient, cast.doctor, kind) == ["limit"]
    with refused("limit"):
        services.booking_book_online(
            patient=cast.patient,
            clinician=cast.doctor,
            kind=kind,
            starts_at=local(WEDNESDAY, 11),
            now=NOW,
        )
    # Another patient is not concerned; without a limit, nor is this one.
    assert obstacles(cast.patient_of_doctor2, cast.doctor, kind) == []
    services.appointment_type_save(by=cast.clinic_admin, kind=kind, max_open_bookings=0)
    assert obstacles(cast.patient, cast.doctor, kind) == []


def test_cancelled_and_past_bookings_do_not_count_towards_the_limit(cast, kind, open_calendar):
    first, second = (
        services.booking_book_online(
            patient=cast.patient,
            clinician=cast.doctor,
            kind=kind,
            starts_at=local(WEDNESDAY, hour),
            now=NOW,
        )
        for hour in (9, 10)
    )
    services.booking_cancel(booking=first, patient=cast.patient, now=NOW)

    assert obstacles(cast.patient, cast.doctor, kind) == []
    services.booking_book_online(
        patient=cast.patient,
        clinician=cast.doctor,
        kind=kind,
        starts_at=local(date(2027, 3, 8), 9),
        now=NOW,
    )
    assert obstacles(cast.patient, cast.doctor, kind) == ["limit"]
    # Once the second one has started, it is no longer open.
    assert (
        obstacles(cast.patient, cast.doctor, kind, now=second.starts_at + timedelta(minutes=5))
        == []
    )


@pytest.fixture
def one_slot(cast) -> AppointmentType:
    """Doctor 2's calendar, open online with a single hour-long slot: Monday 1 March 2027 at
    09:00."""
    services.calendar_set_online(by=cast.doctor2, clinician=cast.doctor2, online=True)
    hour = make_type(cast.clinic_admin, name="Prima visita", duration_minutes=60)
    make_plan(cast.doctor2, cast.doctor2, [hour], MONDAY, MONDAY, weekdays=[0], closes=time(10))
    return hour


def test_a_calendar_whose_only_slot_is_booked_has_no_free_time(cast, one_slot):
    before = datetime(2027, 2, 25, 9, 0, tzinfo=UTC)
    assert obstacles(cast.patient_of_doctor2, cast.doctor2, one_slot, now=before) == []

    services.booking_create(
        by=cast.doctor2,
        clinician=cast.doctor2,
        patient=cast.patient,
        kind=one_slot,
        starts_at=local(MONDAY, 9),
        now=before,
    )

    assert obstacles(cast.patient_of_doctor2, cast.doctor2, one_slot, now=before) == [
        "no_free_time"
    ]


def test_a_slot_within_the_minimum_notice_is_no_free_time(cast, one_slot):
    # 08:00 in Rome: the 09:00 slot is less than the two hours' notice away.
    assert obstacles(cast.patient_of_doctor2, cast.doctor2, one_slot, now=NOW) == ["no_free_time"]
    with refused("window"):
        services.booking_book_online(
            patient=cast.patient_of_doctor2,
            clinician=cast.doctor2,
            kind=one_slot,
            starts_at=local(MONDAY, 9),
            now=NOW,
        )


def test_every_obstacle_is_listed_at_once(cast, open_calendar):
    theirs = make_type(
        cast.doctor2, name="Ecografia", clinician=cast.doctor2, bookable_online=False
    )
    services.calendar_set_online(by=cast.doctor, clinician=cast.doctor, online=False)
    patient_block(
        operator=cast.operator,
        patient=cast.other_patient,
        area=PatientBlock.Area.AGENDA,
        reason="Prova",
    )

    assert obstacles(cast.other_patient, cast.doctor, theirs) == [
        "blocked",
        "calendar_offline",
        "type_offline",
        "not_offered",
        "not_in_template",
        "not_allowed",
    ]


def test_without_a_patient_only_the_calendars_own_obstacles_are_listed(cast, kind, open_calendar):
    services.calendar_set_online(by=cast.doctor, clinician=cast.doctor, online=False)
    patient_block(
        operator=cast.operator,
        patient=cast.patient,
        area=PatientBlock.Area.AGENDA,
        reason="Prova",
    )

    assert obstacles(None, cast.doctor, kind) == ["calendar_offline"]
    services.calendar_set_online(by=cast.doctor, clinician=cast.doctor, online=True)
    assert obstacles(None, cast.doctor, kind) == []
