from datetime import datetime
from zoneinfo import ZoneInfo

from django.urls import reverse

from consulta.visits.models import Visit


def test_browser_language_is_used_before_sign_in(client, db):
    response = client.get(reverse("account_login"), HTTP_ACCEPT_LANGUAGE="nb-NO,nb;q=0.9")
    assert '<html lang="nb">' in response.content.decode()


def test_unsupported_browser_language_falls_back_to_english(client, db):
    response = client.get(reverse("account_login"), HTTP_ACCEPT_LANGUAGE="ja")
    assert '<html lang="en">' in response.content.decode()


def test_signed_in_user_gets_the_clinics_default_language(client, login, cast):
    login(cast.other_doctor)  # Cabinet Beta speaks French
    response = client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="en")
    assert '<html lang="fr">' in response.content.decode()


def test_the_users_own_language_wins_over_the_clinics(client, login, cast):
    cast.other_doctor.user.language = "it"
    cast.other_doctor.user.save(update_fields=["language"])
    login(cast.other_doctor)
    assert '<html lang="it">' in client.get(reverse("dashboard")).content.decode()


def test_language_picker_choice_wins_over_everything(client, login, cast):
    login(cast.other_doctor)
    client.post(reverse("set_language"), {"language": "nb", "next": "/dashboard/"})
    assert '<html lang="nb">' in client.get(reverse("dashboard")).content.decode()


def test_the_pickers_choice_is_kept_for_what_reaches_the_person_elsewhere(client, login, cast):
    """Emails and text messages, and the person's other devices, speak the picked language."""
    login(cast.patient)
    response = client.post(reverse("set_language"), {"language": "it", "next": "/my/"})
    assert response.status_code == 302 and response.url == "/my/"
    cast.patient.user.refresh_from_db()
    assert cast.patient.user.language == "it"


def test_an_unknown_language_changes_nothing(client, login, cast):
    login(cast.patient)
    client.post(reverse("set_language"), {"language": "xx", "next": "/my/"})
    cast.patient.user.refresh_from_db()
    assert cast.patient.user.language == ""


def test_the_picker_before_sign_in_needs_no_account(client, db):
    response = client.post(reverse("set_language"), {"language": "fr", "next": "/"})
    assert response.status_code == 302
    assert client.cookies["django_language"].value == "fr"


def test_times_are_shown_in_the_clinics_time_zone(client, login, cast):
    scheduled = datetime(2099, 1, 15, 8, 30, tzinfo=ZoneInfo("UTC"))
    Visit.objects.create(
        clinic=cast.other_clinic,
        patient=cast.other_patient,
        doctor=cast.other_doctor,
        scheduled_at=scheduled,
    )
    login(cast.other_patient)
    client.cookies["django_language"] = "en"
    html = client.get(reverse("patient_home")).content.decode()
    assert "9:30" in html  # Paris is UTC+1 in January
