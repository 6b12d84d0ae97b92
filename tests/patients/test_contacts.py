import pytest
from django.urls import reverse

from consulta.audit.models import AuditEvent
from consulta.patients.models import Patient


def test_doctor_changes_contacts_and_the_phone_is_normalised(client, login, cast):
    login(cast.doctor)
    client.post(
        reverse("patient_update_contacts", args=[cast.patient.pk]),
        {"email": "Paolo.New@Example.it", "phone": "333 765 4321", "date_of_birth": "1958-04-12"},
    )
    patient = Patient.objects.get(pk=cast.patient.pk)
    assert (patient.email, patient.phone, str(patient.date_of_birth)) == (
        "paolo.new@example.it",
        "+393337654321",
        "1958-04-12",
    )
    event = AuditEvent.objects.get(action="patient.contacts")
    assert event.detail["fields"] == ["date_of_birth", "email", "phone"]


def test_record_shows_the_phone_as_people_read_it(client, login, cast):
    Patient.objects.filter(pk=cast.patient.pk).update(phone="+393337654321")
    login(cast.doctor)
    html = client.get(reverse("patient_detail", args=[cast.patient.pk])).content.decode()
    assert "+39 333 765 4321" in html


def test_a_bad_phone_is_refused_and_nothing_changes(client, login, cast):
    login(cast.doctor)
    response = client.post(
        reverse("patient_update_contacts", args=[cast.patient.pk]),
        {"email": "x@y.it", "phone": "12"},
        follow=True,
    )
    assert "12 is not a valid phone number." in response.content.decode()
    assert Patient.objects.get(pk=cast.patient.pk).email == "paolo@patients.test"
    assert not AuditEvent.objects.filter(action="patient.contacts").exists()


@pytest.mark.parametrize("who", ["clinic_admin", "other_doctor", "patient"])
def test_others_cannot_change_contacts(client, login, cast, who):
    login(getattr(cast, who))
    response = client.post(
        reverse("patient_update_contacts", args=[cast.patient.pk]), {"email": "x@y.it", "phone": ""}
    )
    assert response.status_code == 404
    assert Patient.objects.get(pk=cast.patient.pk).email == "paolo@patients.test"


def test_a_new_email_becomes_the_patients_sign_in_address(client, login, cast):
    login(cast.doctor)
    client.post(
        reverse("patient_update_contacts", args=[cast.patient.pk]),
        {"email": "paolo.nuovo@example.it", "phone": ""},
    )
    cast.patient.user.refresh_from_db()
    assert cast.patient.user.email == "paolo.nuovo@example.it"


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", "This patient signs in with their email address: it cannot be removed."),
        ("sara@patients.test", "This email address already belongs to another account."),
    ],
)
def test_a_sign_in_address_cannot_be_removed_or_taken(client, login, cast, email, message):
    login(cast.doctor)
    response = client.post(
        reverse("patient_update_contacts", args=[cast.patient.pk]),
        {"email": email, "phone": ""},
        follow=True,
    )
    assert message in response.content.decode()
    assert Patient.objects.get(pk=cast.patient.pk).email == "paolo@patients.test"
    cast.patient.user.refresh_from_db()
    assert cast.patient.user.email == "paolo@patients.test"


def test_a_date_of_birth_in_the_future_is_refused(client, login, cast):
    login(cast.doctor)
    response = client.post(
        reverse("patient_update_contacts", args=[cast.patient.pk]),
        {"email": "paolo@patients.test", "phone": "", "date_of_birth": "2099-01-01"},
        follow=True,
    )
    assert "is in the future." in response.content.decode()
    assert Patient.objects.get(pk=cast.patient.pk).date_of_birth is None
