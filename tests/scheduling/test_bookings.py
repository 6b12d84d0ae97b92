"""Bookings: online by the patient and by the clinic's staff, cancelling, moving, the visit
room of video bookings, the patient's email with its calendar file, and the audit trail."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core import mail
from icalendar import Calendar as ICalendar

from consulta.accounts.models import StaffMember
from consulta.audit.models import AuditEvent
from consulta.lib.errors import DomainError
from consulta.scheduling import services
from consulta.scheduling.models import Booking, BookingHold, ContactMode
from consulta.scheduling.slots import free_slots
from consulta.visits.models import Visit
from tests.conftest import make_staff
from tests.patients.conftest import add_patient
from tests.scheduling.conftest import (
    MONDAY,
    NOW,
    ROME,
    WEDNESDAY,
    local,
    make_plan,
    make_type,
    refused,
)

pytestmark = pytest.mark.django_db

NINE = local(WEDNESDAY, 9)  # Wednesday 3 March 2027, 09:00 in Rome


def book_online(cast, kind, starts_at=NINE, patient=None, **options) -> Booking:
    options.setdefault("now", NOW)
    return services.booking_book_online(
        patient=patient or cast.patient,
        clinician=cast.doctor,
        kind=kind,
        starts_at=starts_at,
        **options,
    )


def book(cast, kind, starts_at=NINE, by=None, patient=None, **options) -> Booking:
    """Staff book in the doctor's calendar (by the doctor, unless `by` says otherwise)."""
    options.setdefault("now", NOW)
    options.setdefault("clinician", cast.doctor)
    return services.booking_create(
        by=by or cast.doctor,
        patient=patient or cast.patient,
        kind=kind,
        starts_at=starts_at,
        **options,
    )


def free_on(cast, day: date, kind) -> list[datetime]:
    return [
        s.starts_at
        for s in free_slots([cast.doctor.pk], day, 1, ROME, type_ids=[kind.pk], not_before=NOW)
    ]


def holds(booking) -> list[tuple[int, datetime, datetime, bool]]:
    return sorted(
        BookingHold.objects.filter(booking=booking).values_list(
            "clinician_id", "starts_at", "ends_at", "active"
        )
    )


# --- Booking online ---------------------------------------------------------------------------


def test_a_patient_books_a_free_slot_online(cast, kind, open_calendar):
    booking = book_online(cast, kind)

    booking.refresh_from_db()
    assert (booking.clinician, booking.patient, booking.appointment_type) == (
        cast.doctor,
        cast.patient,
        kind,
    )
    assert (booking.starts_at, booking.ends_at) == (NINE, NINE + timedelta(minutes=20))
    assert booking.status == Booking.Status.BOOKED
    assert booking.source == Booking.Source.ONLINE
    assert booking.contact_mode == ContactMode.IN_PERSON  # the type's default
    assert booking.booked_by == cast.patient.user
    assert booking.visit is None  # in person: no visit room
    assert holds(booking) == [(cast.doctor.pk, NINE, NINE + timedelta(minutes=20), True)]
    assert NINE not in free_on(cast, WEDNESDAY, kind)


def test_a_video_booking_gets_its_visit_room(cast, kind, open_calendar):
    booking = book_online(cast, kind, contact_mode=ContactMode.VIDEO)

    visit = Visit.objects.get(booking=booking)
    assert (visit.clinic, visit.patient, visit.doctor) == (cast.clinic, cast.patient, cast.doctor)
    assert visit.scheduled_at == NINE
    assert visit.status == Visit.Status.SCHEDULED


def test_a_contact_mode_the_type_does_not_offer_is_refused(cast, video, open_calendar):
    with refused("contact_mode"):
        book_online(cast, video, contact_mode=ContactMode.IN_PERSON)
    assert not Booking.objects.exists()


def test_a_slot_booked_already_is_taken(cast, kind, open_calendar):
    book_online(cast, kind)

    with pytest.raises(services.SlotTaken) as taken:
        book_online(cast, kind, patient=cast.patient_of_doctor2)
    assert taken.value.code == "taken"
    assert Booking.objects.count() == 1


def test_a_slot_overlapping_a_booking_of_another_type_is_taken(cast, kind, video, open_calendar):
    book_online(cast, kind)  # 09:00-09:20

    with pytest.raises(services.SlotTaken):
        book_online(cast, video, starts_at=local(WEDNESDAY, 9, 15))


@pytest.mark.parametrize(
    "starts_at",
    [
        pytest.param(local(MONDAY, 9), id="within-the-minimum-notice"),
        pytest.param(local(date(2027, 5, 3), 9), id="beyond-the-days-ahead"),
    ],
)
def test_a_time_outside_the_booking_window_is_refused_online(cast, kind, open_calendar, starts_at):
    # Both are slots of the template: 09:00 on Monday 1 March is one hour from NOW (two
    # hours' notice), Monday 3 May is 63 days ahead (60 at most).
    with refused("window"):
        book_online(cast, kind, starts_at=starts_at)
    assert not Booking.objects.exists()


@pytest.mark.parametrize(
    "starts_at",
    [
        pytest.param(local(WEDNESDAY, 9, 5), id="between-slots"),
        pytest.param(local(WEDNESDAY, 13), id="after-the-block"),
        pytest.param(local(date(2027, 3, 6), 9), id="on-a-saturday"),
    ],
)
def test_a_time_that_is_not_a_slot_is_refused_online(cast, kind, open_calendar, starts_at):
    with refused("outside_hours"):
        book_online(cast, kind, starts_at=starts_at)
    assert not Booking.objects.exists()


def test_a_past_time_is_refused(cast, kind, open_calendar):
    an_hour_ago = NOW - timedelta(hours=1)

    with refused("past"):
        book_online(cast, kind, starts_at=an_hour_ago)
    with refused("past"):
        book(cast, kind, starts_at=an_hour_ago, outside_hours=True)
    assert not Booking.objects.exists()


def test_a_time_without_time_zone_is_refused(cast, kind, open_calendar):
    with refused("naive_time"):
        book_online(cast, kind, starts_at=NINE.replace(tzinfo=None))


# --- Booking by the clinic --------------------------------------------------------------------


def test_staff_book_outside_the_working_hours_only_on_purpose(cast, kind, open_calendar):
    one_pm = local(WEDNESDAY, 13)

    with refused("outside_hours"):
        book(cast, kind, starts_at=one_pm)
    booking = book(cast, kind, starts_at=one_pm, outside_hours=True)

    assert booking.source == Booking.Source.STAFF
    assert booking.booked_by == cast.doctor.user
    assert holds(booking) == [(cast.doctor.pk, one_pm, one_pm + timedelta(minutes=20), True)]


def test_staff_book_a_slot_within_the_minimum_notice(cast, kind, open_calendar):
    booking = book(cast, kind, starts_at=local(MONDAY, 9))

    assert booking.starts_at == local(MONDAY, 9)


def test_the_groups_secretary_books_in_the_doctors_calendar(cast, kind, open_calendar, secretary):
    booking = book(cast, kind, by=secretary, patient=cast.patient_of_doctor2)

    assert booking.booked_by == secretary.user


def test_a_secretary_outside_the_group_cannot_book(cast, kind, open_calendar):
    with refused("forbidden"):
        book(cast, kind, by=cast.secretary)


def test_the_clinic_admin_cannot_book(cast, kind, open_calendar):
    with refused("forbidden"):
        book(cast, kind, by=cast.clinic_admin)


def test_staff_cannot_book_for_a_patient_they_do_not_see(cast, kind, open_calendar):
    loner = make_staff(cast.clinic, "loner@alfa.test", StaffMember.Role.DOCTOR, "Luca", "Solo")
    stranger = add_patient(loner, "Nino", "Galli")

    with refused("forbidden"):
        book(cast, kind, patient=stranger)
    with refused("forbidden"):
        book(cast, kind, patient=cast.other_patient)
    assert not Booking.objects.exists()


def test_staff_cannot_book_for_an_archived_patient(cast, kind, open_calendar):
    archived = add_patient(cast.doctor, "Ada", "Archiviata", archived="Trasferita")

    with refused("forbidden"):
        book(cast, kind, patient=archived)


def test_staff_cannot_book_in_a_calendar_they_do_not_work_with(cast, kind):
    loner = make_staff(cast.clinic, "loner@alfa.test", StaffMember.Role.DOCTOR, "Luca", "Solo")
    make_plan(cast.clinic_admin, loner, [kind], MONDAY, WEDNESDAY)

    with refused("forbidden"):
        book(cast, kind, clinician=loner)
    with refused("forbidden"):
        book(cast, kind, clinician=cast.other_doctor, outside_hours=True)


def test_additional_participants_are_held_too(cast, kind, open_calendar):
    make_plan(cast.doctor2, cast.doctor2, [kind], MONDAY, date(2027, 5, 31))
    services.calendar_set_online(by=cast.doctor2, clinician=cast.doctor2, online=True)
    booking = book(cast, kind, contact_mode=ContactMode.VIDEO, participants=[cast.doctor2])

    end = NINE + timedelta(minutes=20)
    assert holds(booking) == sorted(
        [(cast.doctor.pk, NINE, end, True), (cast.doctor2.pk, NINE, end, True)]
    )
    with pytest.raises(services.SlotTaken):
        book(
            cast,
            kind,
            by=cast.doctor2,
            clinician=cast.doctor2,
            patient=cast.patient_of_doctor2,
            starts_at=local(WEDNESDAY, 9, 10),
            outside_hours=True,
        )
    with pytest.raises(services.SlotTaken):
        services.booking_book_online(
            patient=cast.patient_of_doctor2,
            clinician=cast.doctor2,
            kind=kind,
            starts_at=NINE,
            now=NOW,
        )


def test_participants_must_be_other_doctors_the_booker_works_with(cast, kind, open_calendar):
    for participant in (cast.doctor, cast.secretary, cast.other_doctor):
        with refused("participants"):
            book(cast, kind, participants=[participant])
    assert not Booking.objects.exists()


# --- Cancelling -------------------------------------------------------------------------------


def test_a_patient_cancels_their_booking_before_the_deadline(cast, kind, open_calendar):
    booking = book_online(cast, kind)

    cancelled = services.booking_cancel(
        booking=booking, patient=cast.patient, reason=" Impegno di lavoro ", now=NOW
    )

    cancelled.refresh_from_db()
    assert cancelled.status == Booking.Status.CANCELLED
    assert (cancelled.cancelled_at, cancelled.cancelled_by) == (NOW, cast.patient.user)
    assert cancelled.cancel_reason == "Impegno di lavoro"
    assert [active for *_, active in holds(booking)] == [False]


def test_a_patient_cannot_cancel_after_the_deadline(cast, kind, open_calendar):
    booking = book_online(cast, kind)
    a_day_before = NINE - timedelta(hours=24)

    with refused("deadline"):
        services.booking_cancel(
            booking=booking, patient=cast.patient, now=a_day_before + timedelta(minutes=1)
        )
    booking.refresh_from_db()
    assert booking.status == Booking.Status.BOOKED
    services.booking_cancel(booking=booking, patient=cast.patient, now=a_day_before)


def test_staff_cancel_after_the_patients_deadline(cast, kind, open_calendar):
    booking = book_online(cast, kind)

    services.booking_cancel(booking=booking, by=cast.doctor2, now=NINE - timedelta(hours=1))

    booking.refresh_from_db()
    assert (booking.status, booking.cancelled_by) == (Booking.Status.CANCELLED, cast.doctor2.user)


def test_a_patient_cannot_cancel_someone_elses_booking(cast, kind, open_calendar):
    booking = book_online(cast, kind)

    with refused("forbidden"):
        services.booking_cancel(booking=booking, patient=cast.patient_of_doctor2, now=NOW)
    with refused("forbidden"):
        services.booking_cancel(booking=booking, by=cast.other_doctor, now=NOW)
    with refused("forbidden"):
        services.booking_cancel(booking=booking, by=cast.clinic_admin, now=NOW)


def test_a_cancelled_booking_cannot_be_cancelled_again(cast, kind, open_calendar):
    booking = book_online(cast, kind)
    services.booking_cancel(booking=booking, patient=cast.patient, now=NOW)

    with refused("state"):
        services.booking_cancel(booking=booking, patient=cast.patient, now=NOW)


def test_cancelling_frees_the_slot_and_ends_the_visit(cast, kind, open_calendar):
    booking = book_online(cast, kind, contact_mode=ContactMode.VIDEO)
    assert NINE not in free_on(cast, WEDNESDAY, kind)

    services.booking_cancel(booking=booking, patient=cast.patient, now=NOW)

    assert NINE in free_on(cast, WEDNESDAY, kind)
    visit = Visit.objects.get(pk=booking.visit_id)
    assert visit.status == Visit.Status.ENDED
    assert (visit.ended_at is not None, visit.ended_by) == (True, cast.patient.user)
    # The freed slot can be booked again.
    book_online(cast, kind, patient=cast.patient_of_doctor2)


# --- Changing ---------------------------------------------------------------------------------


def test_moving_a_booking_moves_its_holds_and_frees_the_old_time(cast, kind, open_calendar):
    booking = book(cast, kind, participants=[cast.doctor2])
    ten = local(WEDNESDAY, 10)

    moved = services.booking_change(by=cast.doctor, booking=booking, starts_at=ten, now=NOW)

    moved.refresh_from_db()
    assert (moved.starts_at, moved.ends_at) == (ten, ten + timedelta(minutes=20))
    end = ten + timedelta(minutes=20)
    assert holds(booking) == sorted(
        [(cast.doctor.pk, ten, end, True), (cast.doctor2.pk, ten, end, True)]
    )
    free = free_on(cast, WEDNESDAY, kind)
    assert NINE in free
    assert ten not in free


def test_moving_a_video_booking_moves_its_visit(cast, kind, open_calendar):
    booking = book(cast, kind, contact_mode=ContactMode.VIDEO)
    ten = local(WEDNESDAY, 10)

    services.booking_change(by=cast.doctor, booking=booking, starts_at=ten, now=NOW)

    visit = Visit.objects.get(pk=booking.visit_id)
    assert (visit.scheduled_at, visit.status) == (ten, Visit.Status.SCHEDULED)


@pytest.mark.parametrize("ended", [False, True])
def test_a_booking_whose_video_visit_was_held_cannot_be_moved_or_cancelled(
    cast, kind, open_calendar, ended
):
    """It took place: moving it would open a new, empty visit for a visit already held."""
    booking = book(cast, kind, contact_mode=ContactMode.VIDEO)
    Visit.objects.filter(pk=booking.visit_id).update(
        status=Visit.Status.ENDED if ended else Visit.Status.IN_CALL,
        started_at=NOW,
        ended_at=NOW + timedelta(minutes=15) if ended else None,
    )
    with pytest.raises(DomainError) as moving:
        services.booking_change(
            by=cast.doctor, booking=booking, starts_at=local(WEDNESDAY, 10), now=NOW
        )
    with pytest.raises(DomainError) as cancelling:
        services.booking_cancel(by=cast.doctor, booking=booking, now=NOW)
    assert moving.value.code == cancelling.value.code == "held"
    booking.refresh_from_db()
    assert (booking.starts_at, booking.status) == (NINE, Booking.Status.BOOKED)
    assert Visit.objects.count() == 1  # no new visit opened


def test_a_booking_cannot_move_onto_a_taken_time(cast, kind, open_calendar):
    booking = book(cast, kind)
    ten = local(WEDNESDAY, 10)
    book(cast, kind, starts_at=ten, patient=cast.patient_of_doctor2)

    with pytest.raises(services.SlotTaken):
        services.booking_change(by=cast.doctor, booking=booking, starts_at=ten, now=NOW)

    booking.refresh_from_db()
    assert booking.starts_at == NINE
    assert holds(booking) == [(cast.doctor.pk, NINE, NINE + timedelta(minutes=20), True)]


def test_a_booking_cannot_move_to_where_a_participant_is_busy(cast, kind, open_calendar):
    booking = book(cast, kind, participants=[cast.doctor2])
    ten = local(WEDNESDAY, 10)
    book(
        cast,
        kind,
        by=cast.doctor2,
        clinician=cast.doctor2,
        patient=cast.patient_of_doctor2,
        starts_at=ten,
        outside_hours=True,
    )

    with pytest.raises(services.SlotTaken):
        services.booking_change(by=cast.doctor, booking=booking, starts_at=ten, now=NOW)


def test_a_move_outside_the_working_hours_needs_to_be_on_purpose(cast, kind, open_calendar):
    booking = book(cast, kind)
    one_pm = local(WEDNESDAY, 13)

    with refused("outside_hours"):
        services.booking_change(by=cast.doctor, booking=booking, starts_at=one_pm, now=NOW)
    services.booking_change(
        by=cast.doctor, booking=booking, starts_at=one_pm, outside_hours=True, now=NOW
    )
    booking.refresh_from_db()
    assert booking.starts_at == one_pm


def test_a_move_into_the_past_is_refused(cast, kind, open_calendar):
    booking = book(cast, kind)

    with refused("past"):
        services.booking_change(
            by=cast.doctor,
            booking=booking,
            starts_at=NOW - timedelta(hours=1),
            outside_hours=True,
            now=NOW,
        )


def test_changing_from_video_to_in_person_ends_the_visit(cast, kind, open_calendar):
    booking = book(cast, kind, contact_mode=ContactMode.VIDEO)

    services.booking_change(
        by=cast.doctor, booking=booking, contact_mode=ContactMode.IN_PERSON, now=NOW
    )

    booking.refresh_from_db()
    assert booking.contact_mode == ContactMode.IN_PERSON
    assert booking.visit.status == Visit.Status.ENDED
    assert booking.visit.ended_by == cast.doctor.user


def test_changing_from_in_person_to_video_opens_a_visit(cast, kind, open_calendar):
    booking = book(cast, kind)

    services.booking_change(
        by=cast.doctor, booking=booking, contact_mode=ContactMode.VIDEO, now=NOW
    )

    booking.refresh_from_db()
    assert booking.visit is not None
    assert (booking.visit.scheduled_at, booking.visit.status) == (NINE, Visit.Status.SCHEDULED)


def test_staff_who_do_not_work_with_the_doctor_cannot_change_a_booking(cast, kind, open_calendar):
    booking = book(cast, kind)

    for outsider in (cast.secretary, cast.clinic_admin, cast.other_doctor):
        with refused("forbidden"):
            services.booking_change(
                by=outsider, booking=booking, starts_at=local(WEDNESDAY, 10), now=NOW
            )


def test_a_cancelled_booking_cannot_be_changed(cast, kind, open_calendar):
    booking = book(cast, kind)
    services.booking_cancel(booking=booking, by=cast.doctor, now=NOW)

    with refused("state"):
        services.booking_change(
            by=cast.doctor, booking=booking, starts_at=local(WEDNESDAY, 10), now=NOW
        )


# --- Done and no-show -------------------------------------------------------------------------


def test_a_booking_cannot_be_marked_done_before_it_starts(cast, kind, open_calendar):
    booking = book(cast, kind)

    for status in (Booking.Status.DONE, Booking.Status.NO_SHOW):
        with refused("future"):
            services.booking_set_status(by=cast.doctor, booking=booking, status=status)
    booking.refresh_from_db()
    assert booking.status == Booking.Status.BOOKED


def test_a_booking_that_has_started_is_marked_done(cast, kind):
    past = datetime(2026, 1, 14, 8, 0, tzinfo=UTC)
    booking = book(cast, kind, starts_at=past, outside_hours=True, now=past)

    services.booking_set_status(by=cast.doctor, booking=booking, status=Booking.Status.DONE)

    booking.refresh_from_db()
    assert booking.status == Booking.Status.DONE
    with refused("state"):
        services.booking_set_status(by=cast.doctor, booking=booking, status=Booking.Status.BOOKED)


# --- Email and audit --------------------------------------------------------------------------


def test_booking_emails_the_patient_a_calendar_file(
    cast, kind, open_calendar, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        booking = book_online(cast, kind, contact_mode=ContactMode.VIDEO)

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [cast.patient.email]
    [(filename, content, mimetype)] = message.attachments
    assert filename.endswith(".ics")
    assert mimetype.split(";")[0] == "text/calendar"
    [event] = ICalendar.from_ical(content).walk("VEVENT")
    assert str(event["UID"]) == f"{booking.pk}@consulta"
    assert event.decoded("DTSTART") == NINE
    assert event.decoded("DTEND") == NINE + timedelta(minutes=20)
    assert str(event["STATUS"]) == "CONFIRMED"
    [part] = [p for p in message.message().walk() if p.get_content_type() == "text/calendar"]
    assert part.get_filename() == "appointment.ics"


def test_the_calendar_attachment_names_each_parameter_once(
    cast, kind, open_calendar, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        book_online(cast, kind)

    [part] = [p for p in mail.outbox[0].message().walk() if p.get_content_type() == "text/calendar"]
    names = [name.lower() for name, _value in part.get_params()]
    assert sorted(names) == ["charset", "method", "text/calendar"], part["Content-Type"]
    assert part.get_param("method") == "PUBLISH"


def test_no_email_when_the_type_does_not_notify_on_booking(
    cast, kind, open_calendar, django_capture_on_commit_callbacks
):
    services.appointment_type_save(by=cast.clinic_admin, kind=kind, notify_on_booking=False)

    with django_capture_on_commit_callbacks(execute=True):
        book_online(cast, kind)

    assert mail.outbox == []


def test_no_email_for_a_patient_without_an_address(
    cast, kind, open_calendar, django_capture_on_commit_callbacks
):
    silent = add_patient(cast.doctor, "Ada", "Senzamail")

    with django_capture_on_commit_callbacks(execute=True):
        book(cast, kind, patient=silent)

    assert mail.outbox == []


def test_cancelling_emails_the_patient_a_cancelled_event(
    cast, kind, open_calendar, django_capture_on_commit_callbacks
):
    booking = book_online(cast, kind)

    with django_capture_on_commit_callbacks(execute=True):
        services.booking_cancel(booking=booking, by=cast.doctor, now=NOW)

    [message] = mail.outbox
    [(_name, content, _mimetype)] = message.attachments
    [event] = ICalendar.from_ical(content).walk("VEVENT")
    assert str(event["UID"]) == f"{booking.pk}@consulta"
    assert str(event["STATUS"]) == "CANCELLED"


def test_no_email_leaves_before_the_booking_commits(
    cast, kind, open_calendar, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        book_online(cast, kind)

    assert mail.outbox == []
    assert callbacks  # the email and the clinic's doorbell wait for the commit


def test_booking_and_cancelling_write_audit_rows(cast, kind, open_calendar):
    online = book_online(cast, kind)
    by_staff = book(cast, kind, starts_at=local(WEDNESDAY, 10), patient=cast.patient_of_doctor2)
    services.booking_cancel(booking=online, patient=cast.patient, reason="Influenza", now=NOW)

    created = AuditEvent.objects.filter(action="booking.create").order_by("at", "pk")
    assert [(e.actor, e.patient, e.target_id) for e in created] == [
        (cast.patient.user, cast.patient, str(online.pk)),
        (cast.doctor.user, cast.patient_of_doctor2, str(by_staff.pk)),
    ]
    assert {e.target_type for e in created} == {"scheduling.booking"}
    cancel = AuditEvent.objects.get(action="booking.cancel")
    assert (cancel.actor, cancel.patient, cancel.target_id) == (
        cast.patient.user,
        cast.patient,
        str(online.pk),
    )
    assert cancel.detail == {"reason": "Influenza"}


def test_a_refused_booking_writes_nothing(cast, kind, open_calendar):
    book_online(cast, kind)

    with pytest.raises(services.SlotTaken):
        book_online(cast, kind, patient=cast.patient_of_doctor2, contact_mode=ContactMode.VIDEO)

    assert Booking.objects.count() == 1
    assert BookingHold.objects.count() == 1
    assert not Visit.objects.exists()
    assert AuditEvent.objects.filter(action="booking.create").count() == 1


def test_a_clinic_wide_type_is_booked_with_each_doctor_who_offers_it(cast, open_calendar, kind):
    make_plan(cast.doctor2, cast.doctor2, [kind], MONDAY, date(2027, 5, 31))
    services.calendar_set_online(by=cast.doctor2, clinician=cast.doctor2, online=True)
    mine = book_online(cast, kind)
    theirs = services.booking_book_online(
        patient=cast.patient, clinician=cast.doctor2, kind=kind, starts_at=NINE, now=NOW
    )

    assert (mine.clinician, theirs.clinician) == (cast.doctor, cast.doctor2)


def test_a_doctors_own_type_cannot_be_booked_with_a_colleague(cast, open_calendar):
    own = make_type(cast.doctor, name="Controllo", clinician=cast.doctor)

    with refused("forbidden"):
        book(cast, own, by=cast.doctor2, clinician=cast.doctor2, outside_hours=True)


# --- Bookings of their own length -------------------------------------------------------------


def test_staff_book_a_longer_time_than_the_types_duration(cast, kind, open_calendar):
    booking = book(cast, kind, duration_minutes=40)

    end = NINE + timedelta(minutes=40)
    assert booking.ends_at == end
    assert holds(booking) == [(cast.doctor.pk, NINE, end, True)]
    free = free_on(cast, WEDNESDAY, kind)
    assert local(WEDNESDAY, 9, 20) not in free
    assert local(WEDNESDAY, 9, 40) in free


def test_a_booking_duration_out_of_bounds_is_refused(cast, kind, open_calendar):
    with refused("duration"):
        book(cast, kind, duration_minutes=481)
    assert not Booking.objects.exists()


def test_moving_a_booking_keeps_its_own_duration(cast, kind, open_calendar):
    booking = book(cast, kind, duration_minutes=40)
    ten = local(WEDNESDAY, 10)

    services.booking_change(by=cast.doctor, booking=booking, starts_at=ten, now=NOW)

    booking.refresh_from_db()
    assert booking.ends_at == ten + timedelta(minutes=40)
    assert holds(booking) == [(cast.doctor.pk, ten, ten + timedelta(minutes=40), True)]


def test_changing_the_contact_mode_keeps_the_bookings_duration(cast, kind, open_calendar):
    booking = book(cast, kind, duration_minutes=40)

    services.booking_change(
        by=cast.doctor, booking=booking, contact_mode=ContactMode.VIDEO, now=NOW
    )

    booking.refresh_from_db()
    assert booking.ends_at == NINE + timedelta(minutes=40)
