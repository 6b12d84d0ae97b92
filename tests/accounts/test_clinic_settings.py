import pytest
from django.urls import reverse

from consulta.accounts.models import Clinic
from consulta.audit.models import AuditEvent

SETTINGS = {
    "name": "Studio Alfa",
    "time_zone": "Europe/Oslo",
    "default_language": "nb",
    "require_mfa": "on",
    "join_minutes_before": "10",
    "join_minutes_after": "120",
}


def test_clinic_admin_changes_the_clinics_settings(client, login, cast):
    login(cast.clinic_admin)
    response = client.post(reverse("clinic_settings"), SETTINGS)
    assert response.status_code == 302
    clinic = Clinic.objects.get(pk=cast.clinic.pk)
    assert (clinic.time_zone, clinic.default_language, clinic.require_mfa) == (
        "Europe/Oslo",
        "nb",
        True,
    )
    event = AuditEvent.objects.get(action="clinic.update")
    assert event.actor == cast.clinic_admin.user
    assert event.detail["fields"] == ["default_language", "require_mfa", "time_zone"]


def test_unknown_time_zone_is_refused_and_nothing_changes(client, login, cast):
    login(cast.clinic_admin)
    response = client.post(reverse("clinic_settings"), {**SETTINGS, "time_zone": "Mars/Olympus"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert Clinic.objects.get(pk=cast.clinic.pk).time_zone == "Europe/Rome"


@pytest.mark.parametrize("who", ["doctor", "secretary", "patient", "other_doctor", "operator"])
def test_only_the_clinic_admin_may_open_the_clinic_settings(client, login, cast, who):
    login(getattr(cast, who))
    assert client.get(reverse("clinic_settings")).status_code == 404
    assert client.post(reverse("clinic_settings"), SETTINGS).status_code == 404
    assert Clinic.objects.get(pk=cast.clinic.pk).time_zone == "Europe/Rome"
