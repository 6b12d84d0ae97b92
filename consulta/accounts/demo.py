"""The demo clinic: a group practice with two doctors, a secretary, a clinic administrator,
three patients and one video visit scheduled for now."""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from consulta.accounts.models import CareTeam, Clinic, StaffMember, User
from consulta.accounts.services import login_link_create
from consulta.patients.models import Patient
from consulta.visits.models import Visit

DEMO_CLINIC = "Studio Medico Demo"
DEMO_PASSWORD = "consulta-demo-2026"  # noqa: S105 - printed for the demo, never in production

STAFF = [
    ("anna.rossi@demo.consulta.test", "Anna", "Rossi", StaffMember.Role.DOCTOR, "Dr."),
    ("marco.bianchi@demo.consulta.test", "Marco", "Bianchi", StaffMember.Role.DOCTOR, "Dr."),
    ("giulia.verdi@demo.consulta.test", "Giulia", "Verdi", StaffMember.Role.SECRETARY, ""),
    ("luca.neri@demo.consulta.test", "Luca", "Neri", StaffMember.Role.CLINIC_ADMIN, ""),
]
# email, first, last, born, phone, doctor (index in STAFF), codice fiscale, state
PATIENTS = [
    (
        "paolo.esposito@demo.consulta.test",
        "Paolo",
        "Esposito",
        "1958-04-12",
        "+393331234567",
        0,
        "SPSPLA58D12F205L",
        Patient.State.SSN,
    ),
    (
        "sara.conti@demo.consulta.test",
        "Sara",
        "Conti",
        "1984-11-03",
        "+393339876543",
        0,
        "CNTSRA84S43F205X",
        Patient.State.SSN_TEMPORARY,
    ),
    (
        "elena.ricci@demo.consulta.test",
        "Elena",
        "Ricci",
        "1992-06-21",
        "+393334445556",
        1,
        "RCCLNE92H61F205P",
        Patient.State.SSN,
    ),
]


@dataclass
class DemoLinks:
    clinic: Clinic
    doctor: StaffMember
    patient: Patient
    visits: list[Visit]
    links: dict[str, str]


@transaction.atomic
def seed_demo(
    *, visits: int = 1, link_minutes: int = 24 * 60, reuse_unstarted: bool = False
) -> DemoLinks:
    """Create the demo clinic once; on every call add `visits` visits for now between the
    first doctor and the first patient and return fresh single-use sign-in links. With
    `reuse_unstarted` (each start of the demo), the visits that an earlier call added and
    nobody started are moved to now first, so the dashboard shows one visit for now, not one
    more per start."""
    clinic, _ = Clinic.objects.get_or_create(
        name=DEMO_CLINIC,
        defaults={
            "country": Clinic.Country.ITALY,
            "time_zone": "Europe/Rome",
            "default_language": "en",
        },
    )
    staff = []
    for email, first, last, role, title in STAFF:
        user = _user(email, first, last, password=DEMO_PASSWORD)
        member, _ = StaffMember.objects.get_or_create(
            user=user, defaults={"clinic": clinic, "role": role, "title": title}
        )
        staff.append(member)
    team, _ = CareTeam.objects.get_or_create(
        clinic=clinic, name="Medicina di gruppo Demo", kind=CareTeam.Kind.GROUP
    )
    # The two doctors and the secretary who serves them.
    team.members.add(*[m for m in staff if m.role != StaffMember.Role.CLINIC_ADMIN])
    patients = []
    for email, first, last, born, phone, doctor_index, national_id, state in PATIENTS:
        user = _user(email, first, last, password=None)
        patient, _ = Patient.objects.get_or_create(
            user=user,
            defaults={
                "clinic": clinic,
                "doctor": staff[doctor_index],
                "first_name": first,
                "last_name": last,
                "date_of_birth": born,
                "email": email,
                "phone": phone,
                "national_id": national_id,
                "state": state,
            },
        )
        patients.append(patient)
    from consulta.scheduling.demo import seed_calendars

    seed_calendars(admin=staff[3], doctors=[m for m in staff if m.is_doctor])
    doctor, patient = staff[0], patients[0]
    now = timezone.now()
    new_visits = []
    if reuse_unstarted and visits:
        new_visits = list(
            Visit.objects.filter(
                clinic=clinic,
                patient=patient,
                doctor=doctor,
                created_by=doctor.user,
                status=Visit.Status.SCHEDULED,
                booking__isnull=True,  # a booking's visit keeps the booking's time
            ).order_by("-scheduled_at")[:visits]
        )
        for visit in new_visits:
            visit.scheduled_at = now
            visit.save(update_fields=["scheduled_at"])
    new_visits += [
        Visit.objects.create(
            clinic=clinic, patient=patient, doctor=doctor, scheduled_at=now, created_by=doctor.user
        )
        for _ in range(visits - len(new_visits))
    ]
    keys = ["doctor", "doctor2", "secretary", "clinic_admin"]
    links = {key: _link(member.user, link_minutes) for key, member in zip(keys, staff, strict=True)}
    links["patient"] = _link(patient.user, link_minutes)
    return DemoLinks(clinic=clinic, doctor=doctor, patient=patient, visits=new_visits, links=links)


def _user(email, first, last, *, password):
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email, password, first_name=first, last_name=last)
    return user


def _link(user, minutes) -> str:
    token = login_link_create(user=user, minutes=minutes)
    return settings.PUBLIC_URL + reverse("login_link", args=[token])
