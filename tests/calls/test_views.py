"""The Colleagues page, calling, answering, the call page and the ringtone settings, for
every persona."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from consulta.calls import services
from consulta.calls.models import InternalCall, RingSettings
from consulta.lib.errors import DomainError
from tests.calls.conftest import accepted, go_online, ringing
from tests.conftest import make_staff

pytestmark = pytest.mark.django_db

STAFF = ["doctor", "doctor2", "secretary", "clinic_admin"]
NOT_STAFF = ["patient", "other_patient", "operator"]
COLLEAGUES = reverse("calls_colleagues")


def json_script(response, element_id) -> dict:
    html = response.content.decode()
    start = html.index(f'id="{element_id}" type="application/json">') + len(element_id) + 30
    return json.loads(html[start : html.index("</script>", start)])


def row_of(response, staff) -> str:
    html = response.content.decode()
    start = html.index(f'data-staff-id="{staff.pk}"')
    return html[start : html.index("</li>", start)]


# --- Colleagues ----------------------------------------------------------------------------


@pytest.mark.parametrize("who", STAFF)
def test_staff_see_their_clinic_s_colleagues(client, login, cast, who):
    login(getattr(cast, who))
    response = client.get(COLLEAGUES)
    assert response.status_code == 200
    listed = {row["member"].pk for row in response.context["rows"]}
    assert listed == {cast.doctor.pk, cast.doctor2.pk, cast.secretary.pk, cast.clinic_admin.pk}


def test_another_clinic_s_doctor_sees_only_their_own(client, login, cast):
    login(cast.other_doctor)
    rows = client.get(COLLEAGUES).context["rows"]
    assert [row["member"] for row in rows] == [cast.other_doctor]


@pytest.mark.parametrize("who", NOT_STAFF)
def test_people_who_are_not_staff_have_no_colleagues_page(client, login, cast, who):
    login(getattr(cast, who))
    assert client.get(COLLEAGUES).status_code == 404


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(COLLEAGUES)
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_the_call_button_says_why_it_cannot_be_used(client, login, cast):
    go_online(cast.doctor2)
    go_online(cast.secretary)
    go_online(cast.clinic_admin)
    accepted(cast.secretary, cast.clinic_admin)
    away = make_staff(cast.clinic, "away@alfa.test", "SECRETARY", "Away", "Person")
    login(cast.doctor)
    response = client.get(COLLEAGUES)
    online = row_of(response, cast.doctor2)
    assert 'data-presence="online"' in online
    assert "Online" in online
    assert "disabled" not in online
    assert 'aria-describedby="call-reason-' in online
    assert 'Call<span class="visually-hidden"> Dr. Marco Bianchi</span>' in online
    busy = row_of(response, cast.secretary)
    assert 'data-presence="in_call"' in busy and " disabled" in busy
    assert "In a call: try again later." in busy
    me = row_of(response, cast.doctor)
    assert " disabled" in me and "This is you." in me
    offline = row_of(response, away)
    assert 'data-presence="offline"' in offline and " disabled" in offline
    assert "Offline: cannot be called now." in offline


def test_the_colleagues_page_costs_the_same_for_a_bigger_clinic(client, login, cast):
    login(cast.doctor)
    client.get(COLLEAGUES)
    with CaptureQueriesContext(connection) as few:
        client.get(COLLEAGUES)
    for index in range(8):
        go_online(make_staff(cast.clinic, f"more{index}@alfa.test", "DOCTOR"))
    with CaptureQueriesContext(connection) as many:
        client.get(COLLEAGUES)
    assert len(many) == len(few)


def test_staff_pages_carry_the_staff_socket_and_the_dialog(client, login, cast):
    RingSettings.objects.create(user=cast.doctor.user, tone="chime", volume=35)
    login(cast.doctor)
    response = client.get(reverse("dashboard"))
    html = response.content.decode()
    assert 'id="incoming-call"' in html
    assert "consulta/js/staff-socket.js" in html
    config = json_script(response, "staff-socket-config")
    assert config["me"] == cast.doctor.pk
    assert config["ring"] == {"tone": "chime", "volume": 35}
    assert config["wsPath"] == "/ws/staff/"
    assert config["strings"]["isCalling"] == "%(name)s is calling you"
    assert f'href="{COLLEAGUES}"' in html


def test_patient_pages_have_no_staff_socket(client, login, cast):
    login(cast.patient)
    html = client.get(reverse("patient_home")).content.decode()
    assert "staff-socket" not in html
    assert 'id="incoming-call"' not in html


# --- calling --------------------------------------------------------------------------------


def test_calling_an_online_colleague_opens_the_call_page(client, login, cast):
    go_online(cast.doctor2)
    login(cast.doctor)
    response = client.post(reverse("call_start"), {"callee": cast.doctor2.pk})
    call = InternalCall.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("call_room", args=[call.pk])
    assert (call.caller, call.callee, call.status) == (cast.doctor, cast.doctor2, "ringing")


def test_calling_an_offline_colleague_says_so(client, login, cast):
    login(cast.doctor)
    response = client.post(reverse("call_start"), {"callee": cast.doctor2.pk}, follow=True)
    assert response.redirect_chain[-1][0] == COLLEAGUES
    assert "Dr. Marco Bianchi is offline." in response.content.decode()
    assert not InternalCall.objects.exists()


def test_calling_a_busy_colleague_says_so(client, login, cast):
    go_online(cast.doctor2)
    ringing(cast.secretary, cast.doctor2)
    login(cast.doctor)
    response = client.post(reverse("call_start"), {"callee": cast.doctor2.pk}, follow=True)
    assert "Dr. Marco Bianchi is busy in another call." in response.content.decode()


@pytest.mark.parametrize("callee", ["other_doctor", "nobody", "not a number"])
def test_calling_someone_outside_the_clinic_is_not_found(client, login, cast, callee):
    go_online(cast.other_doctor)
    login(cast.doctor)
    target = {"other_doctor": cast.other_doctor.pk, "nobody": 999999}.get(callee, callee)
    assert client.post(reverse("call_start"), {"callee": target}).status_code == 404
    assert not InternalCall.objects.exists()


@pytest.mark.parametrize("who", NOT_STAFF)
def test_people_who_are_not_staff_cannot_call(client, login, cast, who):
    go_online(cast.doctor)
    login(getattr(cast, who))
    assert client.post(reverse("call_start"), {"callee": cast.doctor.pk}).status_code == 404


def test_calling_needs_a_post(client, login, cast):
    login(cast.doctor)
    assert client.get(reverse("call_start")).status_code == 405


# --- the call page ------------------------------------------------------------------------------


@pytest.fixture
def call(cast):
    go_online(cast.doctor2)
    return services.call_start(by=cast.doctor, callee=cast.doctor2)


def test_the_caller_opens_the_call_page(client, login, cast, call):
    login(cast.doctor)
    response = client.get(reverse("call_room", args=[call.pk]))
    assert response.status_code == 200
    config = json_script(response, "call-config")
    assert config["role"] == "caller"
    assert config["status"] == "ringing"
    assert config["otherName"] == "Dr. Marco Bianchi"
    path, opened = config["wsPath"].split("?opened=")
    assert path == f"/ws/calls/{call.pk}/"
    assert abs(float(opened) - timezone.now().timestamp()) < 60  # when the page was made
    html = response.content.decode()
    for css_class in ('class="visit-room', 'class="stage"', 'class="remote"', 'class="local"'):
        assert css_class in html
    assert "Cancel call" in html
    assert "consulta/js/internal-call.js" in html


def test_the_callee_opening_a_ringing_call_can_answer_there(client, login, cast, call):
    login(cast.doctor2)
    response = client.get(reverse("call_room", args=[call.pk]))
    html = response.content.decode()
    assert json_script(response, "call-config")["role"] == "callee"
    assert f'action="{reverse("call_accept", args=[call.pk])}"' in html
    assert f'action="{reverse("call_decline", args=[call.pk])}"' in html


@pytest.mark.parametrize("who", ["secretary", "clinic_admin", *NOT_STAFF, "other_doctor"])
def test_nobody_else_opens_the_call_page(client, login, cast, call, who):
    login(getattr(cast, who))
    assert client.get(reverse("call_room", args=[call.pk])).status_code == 404


def test_the_call_page_hands_out_a_turn_credential(client, login, cast, call, settings):
    settings.TURN_URLS = ["turn:turn.example:3478"]
    settings.TURN_SECRET = "s3cret"
    login(cast.doctor)
    servers = json_script(client.get(reverse("call_room", args=[call.pk])), "call-config")[
        "iceServers"
    ]
    turn = servers[-1]
    expiry = int(turn["username"].split(":")[0])
    assert turn["urls"] == ["turn:turn.example:3478"]
    assert turn["username"].endswith(f":{cast.doctor.user_id}")
    assert 3 * 3600 < expiry - timezone.now().timestamp() <= 4 * 3600


def test_an_unanswered_call_s_page_reads_no_answer(client, login, cast, call):
    InternalCall.objects.filter(pk=call.pk).update(
        created_at=timezone.now() - timedelta(seconds=60)
    )
    login(cast.doctor)
    response = client.get(reverse("call_room", args=[call.pk]))
    assert json_script(response, "call-config")["status"] == "missed"


def test_the_call_page_loads_no_inline_script(client, login, cast, call):
    login(cast.doctor)
    response = client.get(reverse("call_room", args=[call.pk]))
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    for tag in response.content.decode().split("<script")[1:]:
        opening = tag.split(">", 1)[0]
        assert "src=" in opening or 'type="application/json"' in opening
    assert "style=" not in response.content.decode()


# --- accepting and declining ----------------------------------------------------------------------


def test_the_callee_accepts_from_the_dialog(client, login, cast, call):
    login(cast.doctor2)
    response = client.post(reverse("call_accept", args=[call.pk]), HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json() == {"url": reverse("call_room", args=[call.pk])}
    assert InternalCall.objects.get().status == "accepted"


def test_the_callee_accepts_from_the_call_page(client, login, cast, call):
    login(cast.doctor2)
    response = client.post(reverse("call_accept", args=[call.pk]))
    assert response.url == reverse("call_room", args=[call.pk])


def test_a_cancelled_call_cannot_be_accepted(client, login, cast, call):
    services.call_hang_up(call_id=call.pk, user=cast.doctor.user)
    login(cast.doctor2)
    response = client.post(reverse("call_accept", args=[call.pk]), HTTP_ACCEPT="application/json")
    assert response.status_code == 409
    assert response.json() == {
        "code": "cancelled",
        "message": "Dr. Anna Rossi cancelled the call.",
    }


@pytest.mark.parametrize("name", ["call_accept", "call_decline"])
@pytest.mark.parametrize("who", ["doctor", "secretary", "clinic_admin", *NOT_STAFF, "other_doctor"])
def test_only_the_callee_answers(client, login, cast, call, name, who):
    login(getattr(cast, who))
    assert client.post(reverse(name, args=[call.pk])).status_code == 404
    assert InternalCall.objects.get().status == "ringing"


def test_the_callee_declines_from_the_dialog(client, login, cast, call):
    login(cast.doctor2)
    response = client.post(reverse("call_decline", args=[call.pk]), HTTP_ACCEPT="application/json")
    assert response.json() == {"ok": True}
    assert InternalCall.objects.get().status == "declined"


# --- ringtone settings --------------------------------------------------------------------------

RINGTONE = reverse("ring_settings")


@pytest.mark.parametrize("who", ["doctor", "secretary", "clinic_admin", "patient", "operator"])
def test_anyone_signed_in_chooses_their_ringtone(client, login, cast, who):
    person = getattr(cast, who)
    login(person)
    page = client.get(RINGTONE)
    assert page.status_code == 200
    assert page.context["form"]["volume"].value() == 70  # the default
    response = client.post(RINGTONE, {"tone": "soft", "volume": "40"})
    assert response.status_code == 302
    saved = RingSettings.objects.get(user=getattr(person, "user", person))
    assert (saved.tone, saved.volume) == ("soft", 40)
    assert client.get(RINGTONE).context["form"]["volume"].value() == 40


def test_the_ringtone_page_names_its_volume_slider(client, login, cast):
    login(cast.doctor)
    html = client.get(RINGTONE).content.decode()
    assert '<label for="id_volume">Volume</label>' in html
    assert 'type="range"' in html
    assert '<output id="volume-value" for="id_volume">70</output>' in html
    assert 'id="ring-preview"' in html


@pytest.mark.parametrize("volume", ["101", "-1", "loud", ""])
def test_a_bad_volume_is_refused_and_nothing_is_saved(client, login, cast, volume):
    login(cast.doctor)
    response = client.post(RINGTONE, {"tone": "chime", "volume": volume})
    assert response.status_code == 400
    assert response.context["form"].errors["volume"] == ["Choose a volume from 0 to 100."]
    assert not RingSettings.objects.exists()


def test_an_unknown_tone_is_refused(client, login, cast):
    login(cast.doctor)
    response = client.post(RINGTONE, {"tone": "siren", "volume": "50"})
    assert response.status_code == 400
    assert response.context["form"].errors["tone"] == ["Choose one of the ringtones."]
    assert not RingSettings.objects.exists()


def test_the_volume_error_is_translated(client, login, cast):
    login(cast.doctor)
    cast.doctor.user.language = "it"
    cast.doctor.user.save(update_fields=["language"])
    response = client.post(RINGTONE, {"tone": "chime", "volume": "500"})
    error = response.context["form"].errors["volume"][0]
    # The sentence goes through gettext in the user's language (the catalogues get it later).
    with translation.override("it"):
        assert error == translation.gettext("Choose a volume from 0 to 100.")


def test_anonymous_cannot_choose_a_ringtone(client):
    assert client.get(RINGTONE).status_code == 302


def test_the_service_refuses_what_the_form_would(cast):
    with pytest.raises(DomainError):
        services.ring_settings_save(user=cast.doctor.user, tone="chime", volume=101)
    with pytest.raises(DomainError):
        services.ring_settings_save(user=cast.doctor.user, tone="siren", volume=50)
    assert not RingSettings.objects.exists()
