"""The cast every test shares (ARCHITECTURE.md, Tests): a doctor, a second doctor of the same
group practice, a secretary, a clinic administrator, a patient, a platform operator, and a
doctor and a patient of another clinic."""

from dataclasses import dataclass

import pytest
from django.utils import timezone

from consulta.accounts.models import CareTeam, Clinic, StaffMember, User
from consulta.patients.models import Patient
from consulta.visits.models import Visit


@dataclass
class Cast:
    clinic: Clinic
    doctor: StaffMember
    doctor2: StaffMember
    secretary: StaffMember
    clinic_admin: StaffMember
    patient: Patient
    patient_of_doctor2: Patient
    operator: User
    other_clinic: Clinic
    other_doctor: StaffMember
    other_patient: Patient


def make_staff(clinic, email, role, first="Test", last="Person", title=""):
    user = User.objects.create_user(
        email, "correct horse battery", first_name=first, last_name=last
    )
    return StaffMember.objects.create(user=user, clinic=clinic, role=role, title=title)


def make_patient(clinic, doctor, email, first, last):
    user = User.objects.create_user(email, None, first_name=first, last_name=last)
    return Patient.objects.create(
        clinic=clinic, doctor=doctor, user=user, first_name=first, last_name=last, email=email
    )


@pytest.fixture
def cast(db) -> Cast:
    clinic = Clinic.objects.create(name="Studio Alfa", country="IT", time_zone="Europe/Rome")
    doctor = make_staff(clinic, "doctor@alfa.test", StaffMember.Role.DOCTOR, "Anna", "Rossi", "Dr.")
    doctor2 = make_staff(
        clinic, "doctor2@alfa.test", StaffMember.Role.DOCTOR, "Marco", "Bianchi", "Dr."
    )
    team = CareTeam.objects.create(clinic=clinic, name="Gruppo Alfa", kind=CareTeam.Kind.GROUP)
    team.members.add(doctor, doctor2)
    other_clinic = Clinic.objects.create(
        name="Cabinet Beta", country="FR", time_zone="Europe/Paris", default_language="fr"
    )
    other_doctor = make_staff(
        other_clinic, "doctor@beta.test", StaffMember.Role.DOCTOR, "Claire", "Martin", "Dr"
    )
    return Cast(
        clinic=clinic,
        doctor=doctor,
        doctor2=doctor2,
        secretary=make_staff(clinic, "secretary@alfa.test", StaffMember.Role.SECRETARY),
        clinic_admin=make_staff(clinic, "admin@alfa.test", StaffMember.Role.CLINIC_ADMIN),
        patient=make_patient(clinic, doctor, "paolo@patients.test", "Paolo", "Esposito"),
        patient_of_doctor2=make_patient(clinic, doctor2, "sara@patients.test", "Sara", "Conti"),
        operator=User.objects.create_superuser("operator@consulta.test", "operator pass 123"),
        other_clinic=other_clinic,
        other_doctor=other_doctor,
        other_patient=make_patient(
            other_clinic, other_doctor, "luc@patients.test", "Luc", "Durand"
        ),
    )


@pytest.fixture
def visit(cast) -> Visit:
    return Visit.objects.create(
        clinic=cast.clinic,
        patient=cast.patient,
        doctor=cast.doctor,
        scheduled_at=timezone.now(),
        created_by=cast.doctor.user,
    )


@pytest.fixture
def login(client):
    """Sign a user in on the test client: `login(cast.doctor)` or `login(cast.patient)`."""

    def sign_in(who):
        user = getattr(who, "user", who)
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return client

    return sign_in
