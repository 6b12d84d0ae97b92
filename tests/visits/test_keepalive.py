from django.urls import reverse


def test_keepalive_needs_a_signed_in_post(client, login, cast):
    assert client.post(reverse("keepalive")).status_code == 302  # to sign-in
    login(cast.patient)
    assert client.get(reverse("keepalive")).status_code == 405
    assert client.post(reverse("keepalive")).json() == {"ok": True}
