"""The demo clinic's calendars: two appointment types, a week template per doctor and a work
plan around today, open for online booking."""

from datetime import time, timedelta

from django.utils import timezone

from consulta.accounts.models import StaffMember
from consulta.scheduling import services
from consulta.scheduling.models import AppointmentType, ContactMode, WorkPlan

WEEK = [(day, time(9), time(12)) for day in range(5)] + [
    (day, time(15), time(18)) for day in (0, 2, 3)
]


def seed_calendars(*, admin: StaffMember, doctors: list[StaffMember]) -> None:
    """Once per clinic: types, templates and plans (later calls change nothing)."""
    if AppointmentType.objects.filter(clinic_id=admin.clinic_id).exists():
        return
    visit = services.appointment_type_save(
        by=admin,
        name="Visita ambulatoriale",
        duration_minutes=20,
        colour="#2f6fde",
        offers_in_person=True,
        offers_video=True,
        default_contact_mode=ContactMode.IN_PERSON,
        bookable_online=True,
        online_audience=AppointmentType.Audience.GROUP,
        patient_information="Porti la tessera sanitaria e i referti recenti.",
    )
    video = services.appointment_type_save(
        by=admin,
        name="Videoconsulto",
        duration_minutes=15,
        colour="#1b8a5a",
        offers_in_person=False,
        offers_video=True,
        default_contact_mode=ContactMode.VIDEO,
        bookable_online=True,
        online_audience=AppointmentType.Audience.OWN,
        min_notice_hours=1,
        patient_information="Si colleghi dal telefono o dal computer 5 minuti prima.",
    )
    today = timezone.localdate()
    for doctor in doctors:
        services.calendar_set_online(by=admin, clinician=doctor, online=True)
        template = services.week_template_create(by=admin, clinician=doctor, name="Settimana tipo")
        for weekday, start, end in WEEK:
            services.template_block_add(
                by=admin,
                template=template,
                weekday=weekday,
                start_time=start,
                end_time=end,
                types=[visit, video],
            )
        if not WorkPlan.objects.filter(clinician=doctor).exists():
            services.work_plan_create(
                by=admin,
                clinician=doctor,
                template=template,
                start_date=today - timedelta(days=7),
                end_date=today + timedelta(days=120),
            )
