"""ICE servers on the visit page: STUN as configured, TURN with coturn's ephemeral
credentials (use-auth-secret), only for the visit's participants."""

import base64
import hashlib
import hmac
from datetime import timedelta

from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from consulta.visits.ice import ice_servers

TURN = {
    "TURN_URLS": ["turn:turn.example.test:3478?transport=udp"],
    "TURN_SECRET": "s3cret",
    "TURN_MARGIN_MINUTES": 60,
}


def _password(username: str) -> str:
    digest = hmac.new(TURN["TURN_SECRET"].encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@override_settings(ICE_SERVERS_STUN=["stun:stun.example.test:3478"], TURN_URLS=[])
def test_without_turn_the_page_gets_stun_only(cast, visit):
    assert ice_servers(cast.doctor.user, visit) == [{"urls": "stun:stun.example.test:3478"}]


@override_settings(ICE_SERVERS_STUN=[], **TURN)
def test_turn_credentials_follow_coturns_use_auth_secret_and_expire_after_the_visit(cast, visit):
    (turn,) = ice_servers(cast.patient.user, visit)
    expiry, user_id = turn["username"].split(":")
    assert user_id == str(cast.patient.user.pk)
    assert turn["credential"] == _password(turn["username"])
    assert turn["urls"] == TURN["TURN_URLS"]
    planned_end = visit.scheduled_at + timedelta(hours=1)
    assert int(expiry) == int((planned_end + timedelta(minutes=60)).timestamp())


@override_settings(ICE_SERVERS_STUN=[], **TURN)
def test_a_late_visit_still_gets_a_credential_that_lasts(cast, visit):
    visit.scheduled_at = timezone.now() - timedelta(hours=5)
    (turn,) = ice_servers(cast.doctor.user, visit)
    expiry = int(turn["username"].split(":")[0])
    assert expiry >= (timezone.now() + timedelta(minutes=59)).timestamp()


@override_settings(ICE_SERVERS_STUN=[], ICE_TRANSPORT_POLICY="relay", **TURN)
def test_each_participant_gets_their_own_credential_on_the_visit_page(client, login, cast, visit):
    login(cast.doctor)
    config = client.get(reverse("visit_room", args=[visit.pk])).context["config"]
    assert config["iceTransportPolicy"] == "relay"
    (turn,) = config["iceServers"]
    assert turn["username"].endswith(f":{cast.doctor.user.pk}")
    assert "s3cret" not in client.get(reverse("visit_room", args=[visit.pk])).content.decode()
    login(cast.doctor2)
    assert client.get(reverse("visit_room", args=[visit.pk])).status_code == 404
