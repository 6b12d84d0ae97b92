"""Configuring calendars: appointment types, week templates, time blocks, work plans and
absences; who may configure which calendar."""

from datetime import date, time

import pytest

from consulta.accounts.models import StaffMember
from consulta.scheduling import services
from consulta.scheduling.models import (
    AppointmentType,
    Calendar,
    ContactMode,
    DayType,
    TemplateBlock,
    WorkPlan,
)
from tests.conftest import make_staff
from tests.scheduling.conftest import MONDAY, make_type, refused

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(cast):
    return services.week_template_create(by=cast.doctor, clinician=cast.doctor, name="Estate")


def add_block(by, template, kind, weekday=0, start=time(9), end=time(12)):
    return services.template_block_add(
        by=by, template=template, weekday=weekday, start_time=start, end_time=end, types=[kind]
    )


# --- Time blocks ------------------------------------------------------------------------------


def test_blocks_that_overlap_on_the_same_weekday_are_refused(cast, kind, template):
    add_block(cast.doctor, template, kind, start=time(9), end=time(12))

    with refused("block_overlap"):
        add_block(cast.doctor, template, kind, start=time(11), end=time(13))
    with refused("block_overlap"):
        add_block(cast.doctor, template, kind, start=time(8), end=time(13))
    assert template.blocks.count() == 1


def test_blocks_that_touch_or_fall_on_other_weekdays_are_accepted(cast, kind, template):
    add_block(cast.doctor, template, kind, start=time(9), end=time(12))

    add_block(cast.doctor, template, kind, start=time(12), end=time(13))
    add_block(cast.doctor, template, kind, weekday=1, start=time(9), end=time(12))

    assert template.blocks.count() == 3


def test_a_block_that_ends_before_it_starts_is_refused(cast, kind, template):
    with refused("block_order"):
        add_block(cast.doctor, template, kind, start=time(12), end=time(9))
    with refused("block_order"):
        add_block(cast.doctor, template, kind, start=time(9), end=time(9))
    assert not TemplateBlock.objects.exists()


def test_a_type_longer_than_the_block_is_refused(cast, template):
    long = make_type(cast.clinic_admin, name="Prima visita", duration_minutes=60)

    with refused("does_not_fit"):
        add_block(cast.doctor, template, long, start=time(9), end=time(9, 30))
    add_block(cast.doctor, template, long, start=time(9), end=time(10))


def test_a_block_cannot_offer_another_doctors_type(cast, template):
    theirs = make_type(cast.doctor2, name="Ecografia", clinician=cast.doctor2)

    with refused("forbidden"):
        add_block(cast.doctor, template, theirs)


def test_a_block_cannot_offer_another_clinics_type(cast, template):
    other_admin = make_staff(cast.other_clinic, "admin@beta.test", StaffMember.Role.CLINIC_ADMIN)
    foreign = make_type(other_admin, name="Consultation")

    with refused("forbidden"):
        add_block(cast.doctor, template, foreign)


# --- Work plans -------------------------------------------------------------------------------


def test_a_work_plan_that_ends_before_it_starts_is_refused(cast, template):
    with refused("plan_order"):
        services.work_plan_create(
            by=cast.doctor,
            clinician=cast.doctor,
            template=template,
            start_date=date(2027, 3, 10),
            end_date=date(2027, 3, 9),
        )


def test_a_one_day_work_plan_is_accepted(cast, template):
    plan = services.work_plan_create(
        by=cast.doctor,
        clinician=cast.doctor,
        template=template,
        start_date=MONDAY,
        end_date=MONDAY,
    )
    assert (plan.start_date, plan.end_date) == (MONDAY, MONDAY)


def test_overlapping_work_plans_of_one_doctor_are_refused(cast, template):
    services.work_plan_create(
        by=cast.doctor,
        clinician=cast.doctor,
        template=template,
        start_date=date(2027, 3, 1),
        end_date=date(2027, 3, 31),
    )

    # The last day is included: a plan starting on it overlaps.
    with refused("plan_overlap"):
        services.work_plan_create(
            by=cast.doctor,
            clinician=cast.doctor,
            template=template,
            start_date=date(2027, 3, 31),
            end_date=date(2027, 4, 30),
        )
    services.work_plan_create(
        by=cast.doctor,
        clinician=cast.doctor,
        template=template,
        start_date=date(2027, 4, 1),
        end_date=date(2027, 4, 30),
    )
    assert WorkPlan.objects.filter(clinician=cast.doctor).count() == 2


def test_work_plans_of_different_doctors_may_overlap(cast, template):
    theirs = services.week_template_create(by=cast.doctor2, clinician=cast.doctor2, name="Estate")
    for doctor, plan_template in ((cast.doctor, template), (cast.doctor2, theirs)):
        services.work_plan_create(
            by=doctor,
            clinician=doctor,
            template=plan_template,
            start_date=date(2027, 3, 1),
            end_date=date(2027, 3, 31),
        )
    assert WorkPlan.objects.count() == 2


def test_a_work_plan_must_use_one_of_the_doctors_own_templates(cast, template):
    with refused("forbidden"):
        services.work_plan_create(
            by=cast.clinic_admin,
            clinician=cast.doctor2,
            template=template,
            start_date=MONDAY,
            end_date=MONDAY,
        )


def test_an_absence_that_ends_before_it_starts_is_refused(cast):
    with refused("plan_order"):
        services.absence_create(
            by=cast.doctor,
            clinician=cast.doctor,
            start_date=date(2027, 3, 10),
            end_date=date(2027, 3, 9),
        )


# --- Who configures which calendar ------------------------------------------------------------


def configure_everything(by: StaffMember, doctor: StaffMember, kind: AppointmentType):
    services.calendar_set_online(by=by, clinician=doctor, online=True)
    template = services.week_template_create(by=by, clinician=doctor, name="Inverno")
    add_block(by, template, kind)
    services.work_plan_create(
        by=by, clinician=doctor, template=template, start_date=MONDAY, end_date=MONDAY
    )
    services.absence_create(by=by, clinician=doctor, start_date=MONDAY, end_date=MONDAY)


def test_a_doctor_configures_their_own_calendar(cast, kind):
    configure_everything(cast.doctor, cast.doctor, kind)

    assert Calendar.objects.get(clinician=cast.doctor).is_online
    assert WorkPlan.objects.filter(clinician=cast.doctor).count() == 1


def test_a_doctor_cannot_configure_a_colleagues_calendar(cast, kind):
    with refused("forbidden"):
        services.calendar_set_online(by=cast.doctor, clinician=cast.doctor2, online=True)
    with refused("forbidden"):
        services.week_template_create(by=cast.doctor, clinician=cast.doctor2, name="Inverno")
    with refused("forbidden"):
        services.absence_create(
            by=cast.doctor, clinician=cast.doctor2, start_date=MONDAY, end_date=MONDAY
        )
    theirs = services.week_template_create(by=cast.doctor2, clinician=cast.doctor2, name="Mio")
    with refused("forbidden"):
        add_block(cast.doctor, theirs, kind)
    with refused("forbidden"):
        services.work_plan_create(
            by=cast.doctor,
            clinician=cast.doctor2,
            template=theirs,
            start_date=MONDAY,
            end_date=MONDAY,
        )
    assert not Calendar.objects.filter(clinician=cast.doctor2, is_online=True).exists()


def test_the_clinic_admin_configures_any_doctors_calendar(cast, kind):
    configure_everything(cast.clinic_admin, cast.doctor, kind)
    configure_everything(cast.clinic_admin, cast.doctor2, kind)

    assert set(Calendar.objects.filter(is_online=True).values_list("clinician", flat=True)) == {
        cast.doctor.pk,
        cast.doctor2.pk,
    }


def test_a_secretary_cannot_configure_a_calendar(cast, secretary, kind):
    with refused("forbidden"):
        services.calendar_set_online(by=secretary, clinician=cast.doctor, online=True)
    with refused("forbidden"):
        services.week_template_create(by=secretary, clinician=cast.doctor, name="Inverno")
    template = services.week_template_create(by=cast.doctor, clinician=cast.doctor, name="Mio")
    with refused("forbidden"):
        add_block(secretary, template, kind)
    with refused("forbidden"):
        services.absence_create(
            by=secretary, clinician=cast.doctor, start_date=MONDAY, end_date=MONDAY
        )


def test_another_clinics_staff_cannot_configure_a_calendar(cast):
    other_admin = make_staff(cast.other_clinic, "admin@beta.test", StaffMember.Role.CLINIC_ADMIN)
    for outsider in (cast.other_doctor, other_admin):
        with refused("forbidden"):
            services.calendar_set_online(by=outsider, clinician=cast.doctor, online=True)
        with refused("forbidden"):
            services.week_template_create(by=outsider, clinician=cast.doctor, name="Inverno")


def test_only_doctors_have_calendars_to_configure(cast):
    with refused("forbidden"):
        services.calendar_set_online(by=cast.clinic_admin, clinician=cast.secretary, online=True)
    with refused("forbidden"):
        services.calendar_set_online(by=cast.clinic_admin, clinician=cast.clinic_admin, online=True)


# --- Appointment types ------------------------------------------------------------------------


def test_an_appointment_type_needs_a_contact_mode(cast):
    with refused("no_contact_mode"):
        make_type(cast.clinic_admin, offers_in_person=False, offers_video=False)
    assert not AppointmentType.objects.exists()


def test_the_default_contact_mode_must_be_one_of_those_offered(cast):
    with refused("default_mode"):
        make_type(
            cast.clinic_admin,
            offers_in_person=True,
            offers_video=False,
            default_contact_mode=ContactMode.VIDEO,
        )
    with refused("default_mode"):
        make_type(cast.clinic_admin, default_contact_mode=ContactMode.PHONE)
    assert not AppointmentType.objects.exists()


def test_a_duration_out_of_bounds_is_refused(cast):
    with refused("duration"):
        make_type(cast.clinic_admin, duration_minutes=4)
    with refused("duration"):
        make_type(cast.clinic_admin, duration_minutes=481)


def test_a_doctor_cannot_make_a_type_for_the_whole_clinic(cast):
    with refused("forbidden"):
        make_type(cast.doctor)
    with refused("forbidden"):
        make_type(cast.doctor, clinician=None)
    assert not AppointmentType.objects.exists()


def test_a_doctor_makes_types_of_their_own_calendar_only(cast):
    own = make_type(cast.doctor, clinician=cast.doctor)

    with refused("forbidden"):
        make_type(cast.doctor, clinician=cast.doctor2)
    assert (own.clinic, own.clinician) == (cast.clinic, cast.doctor)


def test_a_doctor_cannot_change_a_clinic_wide_or_a_colleagues_type(cast, kind):
    theirs = make_type(cast.doctor2, name="Ecografia", clinician=cast.doctor2)

    with refused("forbidden"):
        services.appointment_type_save(by=cast.doctor, kind=kind, name="Mia")
    with refused("forbidden"):
        services.appointment_type_save(by=cast.doctor, kind=theirs, name="Mia")
    kind.refresh_from_db()
    theirs.refresh_from_db()
    assert (kind.name, theirs.name) == ("Visita", "Ecografia")


def test_a_doctor_cannot_take_over_a_colleagues_type(cast):
    theirs = make_type(cast.doctor2, name="Ecografia", clinician=cast.doctor2)

    with refused("forbidden"):
        services.appointment_type_save(by=cast.doctor, kind=theirs, clinician=cast.doctor)
    theirs.refresh_from_db()
    assert theirs.clinician == cast.doctor2


def test_a_doctor_cannot_take_over_a_clinic_wide_type(cast, kind):
    with refused("forbidden"):
        services.appointment_type_save(by=cast.doctor, kind=kind, clinician=cast.doctor)
    kind.refresh_from_db()
    assert kind.clinician is None


def test_the_clinic_admin_makes_clinic_wide_types(cast, kind):
    changed = services.appointment_type_save(by=cast.clinic_admin, kind=kind, name="Controllo")

    assert (changed.clinic, changed.clinician, changed.name) == (cast.clinic, None, "Controllo")


def test_another_clinics_admin_cannot_change_a_type(cast, kind):
    other_admin = make_staff(cast.other_clinic, "admin@beta.test", StaffMember.Role.CLINIC_ADMIN)

    with refused("forbidden"):
        services.appointment_type_save(by=other_admin, kind=kind, name="Consultation")
    kind.refresh_from_db()
    assert kind.name == "Visita"


# --- Days given one type, and the calendar feed -----------------------------------------------


def test_staff_who_work_with_the_doctor_set_the_type_of_a_day(cast, kind, secretary):
    for who in (cast.doctor, cast.doctor2, secretary):
        services.day_type_set(by=who, clinician=cast.doctor, day=MONDAY, kind=kind)

    assert DayType.objects.get().appointment_type == kind


def test_others_cannot_set_the_type_of_a_day(cast, kind):
    for outsider in (cast.secretary, cast.clinic_admin, cast.other_doctor):
        with refused("forbidden"):
            services.day_type_set(by=outsider, clinician=cast.doctor, day=MONDAY, kind=kind)
    theirs = make_type(cast.doctor2, name="Ecografia", clinician=cast.doctor2)
    with refused("forbidden"):
        services.day_type_set(by=cast.doctor, clinician=cast.doctor, day=MONDAY, kind=theirs)
    assert not DayType.objects.exists()


def test_a_new_feed_address_replaces_the_old_one(cast):
    first = services.calendar_feed_create(by=cast.doctor, clinician=cast.doctor)
    second = services.calendar_feed_create(by=cast.doctor, clinician=cast.doctor)

    assert services.calendar_for_feed(first) is None
    assert services.calendar_for_feed(second).clinician == cast.doctor
    assert second not in Calendar.objects.get(clinician=cast.doctor).feed_token_hash


def test_only_the_doctor_creates_their_feed_and_a_revoked_feed_stops_working(cast):
    with refused("forbidden"):
        services.calendar_feed_create(by=cast.clinic_admin, clinician=cast.doctor)
    token = services.calendar_feed_create(by=cast.doctor, clinician=cast.doctor)

    services.calendar_feed_revoke(by=cast.clinic_admin, clinician=cast.doctor)

    assert services.calendar_for_feed(token) is None
    assert services.calendar_for_feed("") is None


def test_a_colour_must_be_a_hex_code(cast):
    with refused("colour"):
        make_type(cast.clinic_admin, colour="red")
