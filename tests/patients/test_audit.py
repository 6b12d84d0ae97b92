"""Every read and change of a patient record leaves an audit row: who, what, patient, IP."""

import pytest
from django.urls import reverse

from consulta.audit.models import AuditEvent
from consulta.patients.models import Patient
from tests.patients.conftest import VALID_CF, add_patient, body

Reason = Patient.ArchiveReason


def url(name, *args):
    return reverse(name, args=args)


def only(action) -> AuditEvent:
    return AuditEvent.objects.get(action=action)


def assert_event(event, *, actor, patient):
    assert event.actor == actor.user
    assert event.patient == patient
    assert event.target_type == "patients.patient"
    assert event.target_id == str(patient.pk)
    assert event.ip == "127.0.0.1"


def test_reading_a_record_is_audited(client, login, cast):
    login(cast.doctor2)
    client.get(url("patient_detail", cast.patient.pk))
    assert_event(only("patient.read"), actor=cast.doctor2, patient=cast.patient)


def test_a_list_page_reads_no_record(client, login, cast):
    login(cast.doctor)
    client.get(url("patient_list_tab", "group"))
    assert not AuditEvent.objects.exists()


def test_adding_a_patient_is_audited(client, login, cast):
    login(cast.doctor)
    client.post(
        url("patient_create"),
        {
            "doctor": cast.doctor2.pk,
            "first_name": "Mario",
            "last_name": "Rossi",
            "state": "SSN",
            "national_id": VALID_CF,
        },
    )
    patient = Patient.objects.get(last_name="Rossi")
    assert_event(only("patient.create"), actor=cast.doctor, patient=patient)


def test_a_refused_addition_writes_nothing(client, login, cast):
    login(cast.doctor)
    client.post(
        url("patient_create"),
        {"doctor": cast.doctor.pk, "first_name": "M", "last_name": "R", "state": "SSN"},
    )
    assert not AuditEvent.objects.exists()


def test_a_state_change_is_audited_with_before_and_after(client, login, cast):
    login(cast.doctor)
    client.post(url("patient_change_state", cast.patient.pk), {"state": "SSN_TEMPORARY"})
    event = only("patient.state")
    assert_event(event, actor=cast.doctor, patient=cast.patient)
    assert (event.detail["before"], event.detail["after"]) == ("SSN", "SSN_TEMPORARY")
    assert_event(only("patient.open_for_change"), actor=cast.doctor, patient=cast.patient)


def test_a_state_change_to_the_same_state_writes_no_change(client, login, cast):
    login(cast.doctor)
    client.post(url("patient_change_state", cast.patient.pk), {"state": "SSN"})
    assert not AuditEvent.objects.filter(action="patient.state").exists()


@pytest.mark.parametrize("reason", [Reason.SSN_REVOKED, Reason.SSN_DECEASED, Reason.OTHER])
def test_archiving_is_audited_with_the_reason(client, login, cast, secretary, reason):
    login(secretary)
    client.post(url("patient_archive", cast.patient.pk), {"reason": reason, "note": "Because"})
    event = only("patient.archive")
    assert_event(event, actor=secretary, patient=cast.patient)
    assert event.detail == {"reason": reason}


def test_restoring_is_audited(client, login, cast):
    patient = add_patient(cast.doctor, "Ada", "Altrove", archived=Reason.OTHER)
    login(cast.doctor)
    client.post(url("patient_restore", patient.pk))
    assert_event(only("patient.restore"), actor=cast.doctor, patient=patient)


@pytest.mark.parametrize("who", ["secretary", "doctor"])
def test_refused_actions_write_only_the_opening(client, login, cast, secretary, who):
    patient = add_patient(cast.doctor, "Ada", "Altrove", archived=Reason.OTHER)
    login(getattr(cast, who))
    if who == "secretary":
        client.post(url("patient_restore", patient.pk))
        client.post(url("patient_change_state", cast.patient.pk), {"state": "SSN_TEMPORARY"})
    else:
        client.post(url("patient_archive", patient.pk), {"reason": Reason.OTHER, "note": "x"})
        client.post(url("patient_delete", cast.patient.pk))
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert actions == {"patient.open_for_change"}


def test_deleting_is_audited_and_the_trail_outlives_the_patient(client, login, cast, secretary):
    patient = add_patient(cast.doctor, "Ada", "Altrove", archived=Reason.OTHER)
    pk = patient.pk
    login(cast.doctor)
    client.get(url("patient_detail", pk))
    login(secretary)
    client.post(url("patient_delete", pk))
    assert not Patient.objects.filter(pk=pk).exists()
    event = only("patient.delete")
    assert event.actor == secretary.user
    assert (event.target_type, event.target_id) == ("patients.patient", str(pk))
    assert event.detail == {"state": "SSN", "doctor": cast.doctor.pk}
    assert event.ip == "127.0.0.1"
    # The earlier rows stay, now pointing at no patient but still naming the record.
    read = only("patient.read")
    assert (read.actor, read.patient, read.target_id) == (cast.doctor.user, None, str(pk))


def test_inviting_is_audited(client, login, cast):
    login(cast.doctor)
    client.post(url("patient_invite", cast.patient.pk), {"message": "Ciao"})
    assert_event(only("patient.invite"), actor=cast.doctor, patient=cast.patient)


def test_exporting_is_audited(client, login, cast):
    login(cast.doctor2)
    response = client.get(url("patient_export"), {"filter": "archived"})
    body(response)
    event = only("patient.export")
    assert (event.actor, event.patient, event.ip) == (cast.doctor2.user, None, "127.0.0.1")
    assert event.detail == {"selection": "archived"}


def test_a_correction_is_audited(client, login, cast):
    login(cast.operator)
    client.post(
        url("patient_correct", cast.patient.pk),
        {"first_name": "Paola", "last_name": "Esposito", "national_id": "", "reason": "typo"},
    )
    event = only("patient.correct")
    assert (event.actor, event.patient, event.ip) == (cast.operator, cast.patient, "127.0.0.1")
    assert event.detail["before"]["first_name"] == "Paolo"
    assert event.detail["after"]["first_name"] == "Paola"
    # Opening the correction form is a read of the record too.
    assert only("patient.read").actor == cast.operator


def test_the_client_address_is_the_requests(client, login, cast):
    login(cast.doctor)
    client.get(url("patient_detail", cast.patient.pk), REMOTE_ADDR="203.0.113.9")
    assert only("patient.read").ip == "203.0.113.9"


def test_an_outsiders_attempt_leaves_no_row_on_our_patient(client, login, cast):
    login(cast.other_doctor)
    client.get(url("patient_detail", cast.patient.pk))
    client.post(url("patient_archive", cast.patient.pk), {"reason": Reason.OTHER, "note": "x"})
    assert not AuditEvent.objects.filter(patient=cast.patient).exists()


# --- who opened this record ----------------------------------------------------------------


def test_the_patients_doctor_sees_who_opened_the_record(client, login, cast, secretary):
    login(cast.doctor2)
    client.get(url("patient_detail", cast.patient.pk))
    login(secretary)
    client.get(url("patient_detail", cast.patient.pk))
    login(cast.doctor)
    response = client.get(url("patient_detail", cast.patient.pk))
    html = response.content.decode()
    assert "Who else opened this record" in html
    log = list(response.context["access_log"])
    # The doctor's own visits to the record are left out: they would drown the others.
    assert [(e.actor, e.action) for e in log] == [
        (secretary.user, "patient.read"),
        (cast.doctor2.user, "patient.read"),
    ]
    assert "Marco Bianchi" in html


def test_the_doctor_reads_when_nobody_else_opened_the_record(client, login, cast):
    login(cast.doctor)
    html = client.get(url("patient_detail", cast.patient.pk)).content.decode()
    assert "Nobody else has opened this record." in html


@pytest.mark.parametrize("who", ["doctor2", "secretary"])
def test_nobody_else_sees_who_opened_the_record(client, login, cast, secretary, who):
    login(cast.doctor)
    client.get(url("patient_detail", cast.patient.pk))
    login(getattr(cast, who))
    response = client.get(url("patient_detail", cast.patient.pk))
    assert "Who else opened this record" not in response.content.decode()
    assert response.context["access_log"] is None


def test_the_access_log_shows_only_this_patients_rows(client, login, cast):
    login(cast.doctor2)
    client.get(url("patient_detail", cast.patient_of_doctor2.pk))
    client.get(url("patient_detail", cast.patient.pk))
    login(cast.doctor)
    response = client.get(url("patient_detail", cast.patient.pk))
    assert {e.patient for e in response.context["access_log"]} == {cast.patient}


# --- The operators' admin site ----------------------------------------------------------------


def test_an_operator_opening_a_patient_in_the_admin_is_audited(client, login, cast):
    login(cast.operator)
    response = client.get(url("admin:patients_patient_change", cast.patient.pk))
    assert response.status_code == 200
    assert url("patient_correct", cast.patient.pk) in response.content.decode()
    event = only("patient.read")
    assert (event.actor, event.patient) == (cast.operator, cast.patient)


def test_an_operator_finds_a_patient_in_the_admin_by_national_id_or_phone(client, login, cast):
    Patient.objects.filter(pk=cast.patient.pk).update(
        national_id="RSSMRA85T10A562S", phone="+393331234567"
    )
    login(cast.operator)
    for query in ("rssmra85t10", "3331234567"):
        response = client.get(url("admin:patients_patient_changelist"), {"q": query})
        assert list(response.context["cl"].result_list) == [cast.patient]
    assert "RSSMRA85T10A562S" in response.content.decode()  # a column of the list


def test_an_admin_address_that_is_no_patient_is_not_an_error(client, login, cast):
    login(cast.operator)
    response = client.get("/admin/patients/patient/abc/change/")
    assert response.status_code == 302  # back to the admin, with "does not exist"
    assert not AuditEvent.objects.exists()


def test_the_admin_changes_no_patient(client, login, cast):
    """States, the archive, the doctor and the contacts change only in the registry, under
    its rules and its audit; the admin site only shows the record and its operator tools."""
    login(cast.operator)
    before = Patient.objects.values().get(pk=cast.patient.pk)
    change = client.post(
        url("admin:patients_patient_change", cast.patient.pk),
        {"state": "SSN_DECEASED", "doctor": cast.other_doctor.pk, "email": "x@y.it"},
    )
    assert change.status_code == 403
    assert client.get(url("admin:patients_patient_add")).status_code == 403
    delete = client.post(url("admin:patients_patient_delete", cast.patient.pk), {"post": "yes"})
    assert delete.status_code == 403
    assert Patient.objects.values().get(pk=cast.patient.pk) == before


def test_the_audit_log_speaks_the_operators_language(client, login, cast):
    login(cast.doctor)
    client.get(url("patient_detail", cast.patient.pk))
    login(cast.operator)
    page = client.get(
        url("admin:audit_auditevent_changelist"), HTTP_ACCEPT_LANGUAGE="it"
    ).content.decode()
    assert "Ha aperto la scheda" in page  # the action, not "patient.read"
    assert "Indirizzo IP" in page
    assert ">patient.read<" not in page
    assert f"Paziente {cast.patient.pk}" in page and "patients.patient" not in page
