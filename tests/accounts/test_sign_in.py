import re
from datetime import timedelta

import pytest
from allauth.mfa.models import Authenticator
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from consulta.accounts.models import LoginLink
from consulta.accounts.services import hash_token, login_link_create
from tests.services import clear_cache

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    clear_cache()


def _signed_in_user_id(client):
    return client.session.get("_auth_user_id")


# --- single-use sign-in links ----------------------------------------------------------


def test_sign_in_link_signs_the_doctor_in_once(client, cast):
    token = login_link_create(user=cast.doctor.user)
    url = reverse("login_link", args=[token])
    assert client.get(url).status_code == 200  # a mail scanner's GET spends nothing
    response = client.post(url)
    assert response.status_code == 302
    assert _signed_in_user_id(client) == str(cast.doctor.user.pk)
    assert client.get(reverse("home")).url == reverse("dashboard")

    client.logout()
    response = client.post(url, follow=True)
    assert _signed_in_user_id(client) is None
    assert "This sign-in link has already been used." in response.content.decode()


def test_sign_in_link_stores_only_a_hash(cast):
    token = login_link_create(user=cast.patient.user)
    link = LoginLink.objects.get(user=cast.patient.user)
    assert token not in link.token_hash
    assert link.token_hash == hash_token(token)


def test_expired_sign_in_link_is_refused(client, cast):
    token = login_link_create(user=cast.patient.user)
    LoginLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(reverse("login_link", args=[token]), follow=True)
    assert _signed_in_user_id(client) is None
    assert "This sign-in link has expired." in response.content.decode()


def test_unknown_sign_in_link_is_refused(client, cast):
    response = client.post(reverse("login_link", args=["not-a-real-token"]), follow=True)
    assert _signed_in_user_id(client) is None
    assert "This sign-in link is not valid." in response.content.decode()


def test_sign_in_link_does_not_step_around_two_factor_authentication(client, cast):
    Authenticator.objects.create(
        user=cast.doctor.user, type=Authenticator.Type.TOTP, data={"secret": "x"}
    )
    token = login_link_create(user=cast.doctor.user)
    response = client.post(reverse("login_link", args=[token]), follow=True)
    assert _signed_in_user_id(client) is None
    assert "two-factor authentication" in response.content.decode()
    assert LoginLink.objects.get(user=cast.doctor.user).used_at is None


def test_sign_in_link_error_is_translated(client, cast):
    client.cookies["django_language"] = "it"
    response = client.post(reverse("login_link", args=["nope"]), follow=True)
    assert "Questo link di accesso non è valido." in response.content.decode()


# --- staff: email and password ------------------------------------------------------


def test_staff_signs_in_with_email_and_password(client, cast):
    response = client.post(
        reverse("account_login"), {"login": "doctor@alfa.test", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert _signed_in_user_id(client) == str(cast.doctor.user.pk)


def test_wrong_password_is_refused_with_a_clear_message_and_logged(client, cast, caplog):
    response = client.post(
        reverse("account_login"), {"login": "doctor@alfa.test", "password": "wrong"}
    )
    assert response.status_code == 200
    assert _signed_in_user_id(client) is None
    assert "not correct" in response.content.decode()
    assert any("sign-in failed for doctor@alfa.test" in r.message for r in caplog.records)


def test_repeated_wrong_passwords_are_rate_limited(client, cast):
    for _ in range(5):
        client.post(reverse("account_login"), {"login": "doctor@alfa.test", "password": "no"})
    response = client.post(
        reverse("account_login"), {"login": "doctor@alfa.test", "password": PASSWORD}
    )
    assert _signed_in_user_id(client) is None
    assert response.status_code in (200, 429)
    assert "Too many failed login attempts" in response.content.decode()


def test_nobody_can_sign_up_on_their_own(client, db):
    response = client.post(
        reverse("account_signup"), {"email": "new@example.test", "password1": "a long password 1"}
    )
    assert "Sign Up Closed" in response.content.decode()
    from consulta.accounts.models import User

    assert not User.objects.filter(email="new@example.test").exists()


# --- patients: one-time code by email -----------------------------------------------


def _request_code(client, email):
    response = client.post(reverse("account_request_login_code"), {"email": email})
    assert response.status_code == 302
    return re.search(r"\b([A-Z0-9]{4}-[A-Z0-9]{4})\b", mail.outbox[-1].body).group(1)


def test_patient_signs_in_with_a_code_sent_by_email(client, cast):
    code = _request_code(client, "paolo@patients.test")
    assert mail.outbox[-1].to == ["paolo@patients.test"]
    response = client.post(reverse("account_confirm_login_code"), {"code": code})
    assert response.status_code == 302
    assert _signed_in_user_id(client) == str(cast.patient.user.pk)
    assert client.get(reverse("home")).url == reverse("patient_home")


def test_wrong_login_code_is_refused(client, cast):
    _request_code(client, "paolo@patients.test")
    response = client.post(reverse("account_confirm_login_code"), {"code": "XXXX-XXXX"})
    assert _signed_in_user_id(client) is None
    assert "Incorrect code." in response.content.decode()


def test_expired_login_code_is_refused(client, cast, settings, monkeypatch):
    code = _request_code(client, "paolo@patients.test")
    later = timezone.now() + timedelta(seconds=settings.ACCOUNT_LOGIN_BY_CODE_TIMEOUT + 5)
    monkeypatch.setattr("time.time", lambda: later.timestamp())
    client.post(reverse("account_confirm_login_code"), {"code": code})
    assert _signed_in_user_id(client) is None


def test_login_code_cannot_be_used_twice(client, cast):
    code = _request_code(client, "paolo@patients.test")
    client.post(reverse("account_confirm_login_code"), {"code": code})
    client.logout()
    response = client.post(reverse("account_confirm_login_code"), {"code": code})
    assert _signed_in_user_id(client) is None
    assert response.status_code in (200, 302)


# --- sessions -------------------------------------------------------------------------


def test_idle_staff_session_expires_after_fifteen_minutes(client, login, cast, monkeypatch):
    login(cast.doctor)
    assert client.get(reverse("dashboard")).status_code == 200
    import time

    now = time.time()
    monkeypatch.setattr("consulta.accounts.middleware.time.time", lambda: now + 16 * 60)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))
    assert _signed_in_user_id(client) is None


def test_patient_session_is_not_expired_after_sixteen_idle_minutes(
    client, login, cast, monkeypatch
):
    login(cast.patient)
    client.get(reverse("patient_home"))
    import time

    now = time.time()
    monkeypatch.setattr("consulta.accounts.middleware.time.time", lambda: now + 16 * 60)
    assert client.get(reverse("patient_home")).status_code == 200


def test_staff_of_a_clinic_requiring_mfa_must_set_it_up(client, login, cast):
    cast.clinic.require_mfa = True
    cast.clinic.save(update_fields=["require_mfa"])
    login(cast.secretary)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response.url == reverse("mfa_activate_totp")
    assert response.headers["X-Frame-Options"] == "DENY"
    Authenticator.objects.create(
        user=cast.secretary.user, type=Authenticator.Type.TOTP, data={"secret": "x"}
    )
    assert client.get(reverse("dashboard")).status_code == 200


def test_staff_with_totp_must_enter_a_code_after_the_password(client, cast):
    Authenticator.objects.create(
        user=cast.doctor.user, type=Authenticator.Type.TOTP, data={"secret": "JBSWY3DPEHPK3PXP"}
    )
    response = client.post(
        reverse("account_login"), {"login": "doctor@alfa.test", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response.url == reverse("mfa_authenticate")
    assert _signed_in_user_id(client) is None
    response = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert _signed_in_user_id(client) is None
