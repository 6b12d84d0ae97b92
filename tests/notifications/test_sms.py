import json

from django.urls import reverse

from consulta.notifications.sms import FileBackend, LogBackend
from consulta.patients.models import Patient


def test_invitation_goes_by_sms_too_when_the_mobile_is_known(
    client, login, cast, settings, tmp_path
):
    settings.SMS_BACKEND = "consulta.notifications.sms.FileBackend"
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")
    Patient.objects.filter(pk=cast.patient.pk).update(phone="+393331234567")
    login(cast.doctor)
    client.post(
        reverse("patient_invite", args=[cast.patient.pk]), {"message": "Benvenuto in Consulta."}
    )
    [line] = (tmp_path / "sms.jsonl").read_text().splitlines()
    sms = json.loads(line)
    assert sms["to"] == "+393331234567"
    assert sms["body"].startswith("Benvenuto in Consulta. http")
    assert "/login/link/" in sms["body"]


def test_no_sms_without_a_mobile_number(client, login, cast, settings, tmp_path):
    settings.SMS_BACKEND = "consulta.notifications.sms.FileBackend"
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")
    login(cast.doctor)
    client.post(reverse("patient_invite", args=[cast.patient.pk]), {"message": "Hello."})
    assert not (tmp_path / "sms.jsonl").exists()


def test_log_backend_writes_the_message_to_the_log(caplog):
    LogBackend().send(to="+4741234567", body="Hei")
    assert "SMS to +4741234567: Hei" in caplog.text


def test_file_backend_appends_one_line_per_message(settings, tmp_path):
    settings.SMS_FILE_PATH = str(tmp_path / "out" / "sms.jsonl")
    FileBackend().send(to="+33612345678", body="Bonjour")
    FileBackend().send(to="+33612345678", body="Encore")
    assert len((tmp_path / "out" / "sms.jsonl").read_text().splitlines()) == 2
