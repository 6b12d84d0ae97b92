"""Fixtures of the registry tests: the cast's secretary serving the group practice, a network
of doctors, a doctor nobody works with, and a quick way to add patients with the ORM."""

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone
from stdnum.it import codicefiscale

from consulta.accounts.models import CareTeam, StaffMember
from consulta.patients.models import Patient
from tests.conftest import make_staff

VALID_CF = "RSSMRA85T10A562S"
_OMOCODIA = "LMNPQRSTUV"  # the letters that stand for the digits 0-9


def omocodia_variant(cf: str, positions=(14,)) -> str:
    """The codice fiscale with the digits at `positions` replaced by their omocodia letters
    and the check character recomputed."""
    chars = list(cf[:15])
    for position in positions:
        chars[position] = _OMOCODIA[int(chars[position])]
    head = "".join(chars)
    return head + codicefiscale.calc_check_digit(head)


def add_patient(doctor, first="Giulia", last="Ferri", **fields) -> Patient:
    """A patient straight in the database (no validation, no audit)."""
    archived = fields.pop("archived", None)
    if archived:
        fields.setdefault("archived_at", timezone.now())
        fields.setdefault("archive_reason", archived)
    return Patient.objects.create(
        clinic=doctor.clinic, doctor=doctor, first_name=first, last_name=last, **fields
    )


def pieces(response) -> list[bytes]:
    """The body as sent, piece by piece, whether the response iterates synchronously (WSGI)
    or asynchronously (ASGI)."""
    content = response.streaming_content
    if hasattr(content, "__aiter__"):

        async def collect():
            return [piece async for piece in content]

        return async_to_sync(collect)()
    return list(content)


def body(response) -> str:
    return b"".join(pieces(response)).decode("utf-8")


@pytest.fixture
def group(cast) -> CareTeam:
    return CareTeam.objects.get(clinic=cast.clinic, kind=CareTeam.Kind.GROUP)


@pytest.fixture
def secretary(cast, group) -> StaffMember:
    """The cast's secretary, serving the group practice."""
    group.members.add(cast.secretary)
    return cast.secretary


@pytest.fixture
def loner(cast) -> StaffMember:
    """A doctor of the same clinic in no care team: nobody in the cast works with them."""
    return make_staff(
        cast.clinic, "loner@alfa.test", StaffMember.Role.DOCTOR, "Luca", "Solitario", "Dr."
    )


@pytest.fixture
def network(cast):
    """A NETWORK care team of the cast's doctor and a third doctor, who has a patient."""
    doctor3 = make_staff(
        cast.clinic, "doctor3@alfa.test", StaffMember.Role.DOCTOR, "Elena", "Verdi", "Dr."
    )
    team = CareTeam.objects.create(clinic=cast.clinic, name="AFT Nord", kind=CareTeam.Kind.NETWORK)
    team.members.add(cast.doctor, doctor3)
    patient = add_patient(doctor3, "Nino", "Galli")
    return team, doctor3, patient
