"""A first consultation without a patient record: the doctor opens a room for a guest, who
joins with a single-use link and no account, and may be saved as a patient afterwards."""

import hashlib
import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from consulta.asgi import application
from consulta.audit.models import AuditEvent
from consulta.lib.errors import DomainError
from consulta.patients.models import Patient
from consulta.visits import services
from consulta.visits.access import GUEST_VISITS_SESSION_KEY, guest_peer, is_guest_of
from consulta.visits.models import GuestLink, Visit
from consulta.visits.nettest_views import _participant_ice_servers
from tests.sockets import session_key

pytestmark = pytest.mark.django_db

GUEST = "Giulia Neri"
VALID_CF = "RSSMRA85T10A562S"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def adhoc(cast) -> tuple[Visit, str]:
    """A visit with a guest, opened now by the doctor, and the raw token of its link."""
    return services.visit_create_adhoc(by=cast.doctor, guest_name=GUEST)


def link_of(visit) -> GuestLink:
    return GuestLink.objects.get(visit=visit)


def refused(call, code: str) -> DomainError:
    with pytest.raises(DomainError) as error:
        call()
    assert error.value.code == code
    return error.value


def guest_url(token: str) -> str:
    return reverse("guest_link", args=[token])


def room(visit) -> str:
    return reverse("visit_room", args=[visit.pk])


def guest_client(token: str) -> Client:
    """A browser without an account that has redeemed the link."""
    browser = Client()
    response = browser.post(guest_url(token))
    assert response.status_code == 302, response.content
    return browser


def session_key_of(browser: Client) -> str:
    return browser.cookies[settings.SESSION_COOKIE_NAME].value


# --- the model ------------------------------------------------------------------------


def test_a_visit_is_with_a_patient_or_a_guest_never_both_never_nobody(cast):
    fields = {"clinic": cast.clinic, "doctor": cast.doctor, "scheduled_at": timezone.now()}
    for wrong in ({"patient": cast.patient, "guest_name": GUEST}, {"guest_name": ""}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Visit.objects.create(**fields, **wrong)


def test_the_participant_name_is_the_patients_or_the_guests(cast, visit, adhoc):
    assert visit.participant_name == "Paolo Esposito"
    assert adhoc[0].participant_name == GUEST
    assert str(adhoc[0]).startswith(GUEST)


# --- visit_create_adhoc -----------------------------------------------------------------


def test_doctor_opens_a_room_for_a_guest_and_gets_the_link_once(cast):
    before = timezone.now()
    visit, token = services.visit_create_adhoc(by=cast.doctor, guest_name="  Giulia   Neri ")
    visit.refresh_from_db()
    assert visit.patient is None
    assert visit.guest_name == GUEST
    assert visit.doctor == cast.doctor
    assert visit.status == Visit.Status.SCHEDULED
    assert before <= visit.scheduled_at <= timezone.now()
    link = link_of(visit)
    assert len(token) >= 43
    assert link.token_hash == sha256(token)
    assert token not in json.dumps(GuestLink.objects.values().get(pk=link.pk), default=str)
    assert link.used_at is None and link.session_key_hash == ""
    event = AuditEvent.objects.get(action="visit.create_adhoc")
    assert event.actor == cast.doctor.user and event.target_id == str(visit.pk)


@pytest.mark.parametrize("who", ["secretary", "clinic_admin"])
def test_only_a_doctor_opens_a_room_for_a_guest(cast, who):
    refused(
        lambda: services.visit_create_adhoc(by=getattr(cast, who), guest_name=GUEST), "forbidden"
    )
    assert not Visit.objects.exists()


@pytest.mark.parametrize(
    ("name", "code"), [("", "name_required"), ("   ", "name_required"), ("x" * 121, "too_long")]
)
def test_the_guest_needs_a_name_of_at_most_120_characters(cast, name, code):
    error = refused(lambda: services.visit_create_adhoc(by=cast.doctor, guest_name=name), code)
    assert error.message
    assert not Visit.objects.exists() and not GuestLink.objects.exists()


def test_two_links_never_share_a_token(cast):
    tokens = {services.visit_create_adhoc(by=cast.doctor, guest_name=GUEST)[1] for _ in range(3)}
    assert len(tokens) == 3


# --- guest_link_redeem ------------------------------------------------------------------


def test_the_first_browser_redeems_the_link(adhoc):
    visit, token = adhoc
    assert services.guest_link_redeem(token=token, session_key="browser-a") == visit
    link = link_of(visit)
    assert link.used_at is not None
    assert link.session_key_hash == sha256("browser-a")
    event = AuditEvent.objects.get(action="visit.guest_join")
    assert event.actor is None and event.target_id == str(visit.pk) and event.patient is None


def test_the_same_browser_may_open_the_link_again(adhoc):
    visit, token = adhoc
    services.guest_link_redeem(token=token, session_key="browser-a")
    first_use = link_of(visit).used_at
    assert services.guest_link_redeem(token=token, session_key="browser-a") == visit
    assert link_of(visit).used_at == first_use
    assert AuditEvent.objects.filter(action="visit.guest_join").count() == 1


def test_a_second_browser_is_told_the_link_was_used(adhoc):
    visit, token = adhoc
    services.guest_link_redeem(token=token, session_key="browser-a")
    error = refused(lambda: services.guest_link_redeem(token=token, session_key="b"), "used")
    assert "already been used" in str(error.message)
    assert link_of(visit).session_key_hash == sha256("browser-a")


def test_an_unknown_link_is_refused(adhoc):
    error = refused(lambda: services.guest_link_redeem(token="nope", session_key="a"), "unknown")
    assert "not valid" in str(error.message)


def test_the_link_of_an_ended_visit_is_refused(cast, adhoc):
    visit, token = adhoc
    services.guest_link_redeem(token=token, session_key="browser-a")
    services.visit_end(visit_id=visit.pk, user=cast.doctor.user)
    for browser in ("browser-a", "browser-b"):
        refused(lambda b=browser: services.guest_link_redeem(token=token, session_key=b), "ended")


def test_an_expired_link_is_refused(adhoc, settings):
    visit, token = adhoc
    GuestLink.objects.filter(visit=visit).update(
        created_at=timezone.now() - timedelta(hours=settings.GUEST_LINK_HOURS, minutes=1)
    )
    error = refused(lambda: services.guest_link_redeem(token=token, session_key="a"), "expired")
    assert "expired" in str(error.message)
    assert link_of(visit).used_at is None


def test_a_guest_who_comes_after_the_join_window_is_told_so(adhoc):
    visit, token = adhoc
    Visit.objects.filter(pk=visit.pk).update(scheduled_at=timezone.now() - timedelta(hours=3))
    refused(lambda: services.guest_link_redeem(token=token, session_key="a"), "too_late")
    assert link_of(visit).used_at is None


# --- guest_link_renew -------------------------------------------------------------------


def test_a_new_link_replaces_the_old_one_and_its_browser(cast, adhoc):
    visit, old = adhoc
    services.guest_link_redeem(token=old, session_key="wrong-device")
    new = services.guest_link_renew(by=cast.doctor, visit=visit)
    assert new != old
    refused(lambda: services.guest_link_redeem(token=old, session_key="wrong-device"), "unknown")
    link = link_of(visit)
    assert link.token_hash == sha256(new) and link.used_at is None
    assert services.guest_link_redeem(token=new, session_key="laptop") == visit
    # The first device is no longer the guest: it cannot say it is ready.
    refused(
        lambda: services.visit_mark_ready(
            visit_id=visit.pk, user=AnonymousUser(), guest_session_key="wrong-device"
        ),
        "forbidden",
    )
    assert AuditEvent.objects.filter(action="visit.guest_link_renew").count() == 1


def test_a_new_link_opens_the_join_window_again(cast, adhoc):
    visit, _old = adhoc
    Visit.objects.filter(pk=visit.pk).update(scheduled_at=timezone.now() - timedelta(hours=3))
    new = services.guest_link_renew(by=cast.doctor, visit=visit)
    assert services.guest_link_redeem(token=new, session_key="a") == visit


@pytest.mark.parametrize("who", ["doctor2", "secretary", "other_doctor"])
def test_only_the_visits_doctor_renews_the_link(cast, adhoc, who):
    visit, token = adhoc
    refused(lambda: services.guest_link_renew(by=getattr(cast, who), visit=visit), "forbidden")
    assert link_of(visit).token_hash == sha256(token)


def test_a_visit_with_a_patient_has_no_guest_link_to_renew(cast, visit):
    refused(lambda: services.guest_link_renew(by=cast.doctor, visit=visit), "not_guest")


def test_the_link_of_an_ended_visit_is_not_renewed(cast, adhoc):
    visit, _token = adhoc
    services.visit_end(visit_id=visit.pk, user=cast.doctor.user)
    refused(lambda: services.guest_link_renew(by=cast.doctor, visit=visit), "ended")


# --- the guest in the waiting room ------------------------------------------------------


def test_the_guest_says_ready_and_leaves_by_their_session(adhoc):
    visit, token = adhoc
    services.guest_link_redeem(token=token, session_key="browser-a")
    guest = AnonymousUser()
    ready = services.visit_mark_ready(visit_id=visit.pk, user=guest, guest_session_key="browser-a")
    assert ready.status == Visit.Status.WAITING
    left = services.visit_leave_waiting(
        visit_id=visit.pk, user=guest, guest_session_key="browser-a"
    )
    assert left.status == Visit.Status.SCHEDULED


def test_nobody_else_is_ready_for_the_guest(cast, adhoc):
    visit, token = adhoc
    services.guest_link_redeem(token=token, session_key="browser-a")
    for user, key in [(AnonymousUser(), None), (AnonymousUser(), "b"), (cast.patient.user, None)]:
        refused(
            lambda u=user, k=key: services.visit_mark_ready(
                visit_id=visit.pk, user=u, guest_session_key=k
            ),
            "forbidden",
        )


def test_the_doctor_entering_a_guest_visit_notifies_nobody(cast, adhoc):
    visit, _token = adhoc
    entered = services.visit_doctor_entered(visit_id=visit.pk, user=cast.doctor.user)
    assert entered.doctor_entered_at is not None


def test_a_doctor_busy_with_a_guest_is_told_the_guests_name(cast, adhoc, visit):
    guest_visit, _token = adhoc
    now = timezone.now()
    Visit.objects.filter(pk=guest_visit.pk).update(
        status=Visit.Status.IN_CALL, ready_at=now, started_at=now
    )
    Visit.objects.filter(pk=visit.pk).update(status=Visit.Status.WAITING, ready_at=now)
    error = refused(lambda: services.visit_admit(visit_id=visit.pk, user=cast.doctor.user), "busy")
    assert GUEST in str(error.message)


# --- visit_save_guest_as_patient --------------------------------------------------------


def new_patient(cast, doctor=None, clinic=None) -> Patient:
    return Patient.objects.create(
        clinic=clinic or cast.clinic,
        doctor=doctor or cast.doctor,
        first_name="Giulia",
        last_name="Neri",
    )


def test_the_doctor_saves_the_guest_as_a_patient(cast, adhoc):
    visit, _token = adhoc
    patient = new_patient(cast)
    saved = services.visit_save_guest_as_patient(by=cast.doctor, visit=visit, patient=patient)
    visit.refresh_from_db()
    assert saved.patient == patient and visit.patient == patient
    assert visit.guest_name == ""
    assert list(patient.visits.all()) == [visit]
    event = AuditEvent.objects.get(action="visit.save_guest")
    assert event.actor == cast.doctor.user and event.patient == patient


@pytest.mark.parametrize("who", ["secretary", "doctor2", "other_doctor"])
def test_only_the_visits_doctor_saves_the_guest(cast, adhoc, who):
    visit, _token = adhoc
    patient = new_patient(cast)
    refused(
        lambda: services.visit_save_guest_as_patient(
            by=getattr(cast, who), visit=visit, patient=patient
        ),
        "forbidden",
    )
    visit.refresh_from_db()
    assert visit.patient is None and visit.guest_name == GUEST


def test_the_guest_is_not_saved_as_someone_elses_patient(cast, adhoc):
    visit, _token = adhoc
    stranger = new_patient(cast, doctor=cast.other_doctor, clinic=cast.other_clinic)
    refused(
        lambda: services.visit_save_guest_as_patient(by=cast.doctor, visit=visit, patient=stranger),
        "forbidden",
    )


def test_a_visit_with_a_patient_has_no_guest_to_save(cast, visit):
    refused(
        lambda: services.visit_save_guest_as_patient(
            by=cast.doctor, visit=visit, patient=new_patient(cast)
        ),
        "not_guest",
    )


def test_the_guest_becomes_a_new_patient_with_the_visit(cast, adhoc):
    visit, _token = adhoc
    patient = services.visit_guest_to_new_patient(
        by=cast.doctor,
        visit=visit,
        doctor=cast.doctor,
        first_name="Giulia",
        last_name="Neri",
        state=Patient.State.PRIVATE,
    )
    visit.refresh_from_db()
    assert visit.patient == patient and patient.doctor == cast.doctor


def test_a_refused_visit_leaves_no_new_patient_behind(cast, adhoc):
    """Another doctor of the group may add patients, but not take this visit: the record
    they were adding is not left behind."""
    visit, _token = adhoc
    refused(
        lambda: services.visit_guest_to_new_patient(
            by=cast.doctor2,
            visit=visit,
            doctor=cast.doctor2,
            first_name="Giulia",
            last_name="Neri",
            state=Patient.State.PRIVATE,
        ),
        "forbidden",
    )
    assert not Patient.objects.filter(last_name="Neri").exists()
    visit.refresh_from_db()
    assert visit.patient is None and visit.guest_name == GUEST


# --- the guest's pages ------------------------------------------------------------------


def test_opening_the_link_shows_the_doctor_and_spends_nothing(client, cast, adhoc):
    visit, token = adhoc
    response = client.get(guest_url(token))
    assert response.status_code == 200
    assert "Dr. Anna Rossi" in response.content.decode()
    assert b"Join the video visit" in response.content
    assert GUEST.encode() not in response.content
    assert link_of(visit).used_at is None


def test_pressing_join_redeems_the_link_and_opens_the_waiting_room(adhoc):
    visit, token = adhoc
    browser = Client()
    response = browser.post(guest_url(token))
    assert response.status_code == 302 and response.url == room(visit)
    assert browser.session[GUEST_VISITS_SESSION_KEY] == [str(visit.pk)]
    assert link_of(visit).session_key_hash == sha256(session_key_of(browser))
    page = browser.get(room(visit))
    assert page.status_code == 200
    assert page.context["role"] == "patient" and page.context["guest"]
    assert b'id="ready-button"' in page.content
    assert b'id="guest-link-box"' not in page.content
    config = page.context["config"]
    assert config["keepalivePath"] == ""  # no sign-in session to keep alive
    assert page.context["visit"].participant_name == GUEST


def test_the_guests_visit_is_audited_without_an_actor(adhoc):
    visit, token = adhoc
    guest_client(token).get(room(visit))
    event = AuditEvent.objects.get(action="visit.open")
    assert event.actor is None and event.target_id == str(visit.pk)
    assert event.detail == {"role": "patient", "guest": True}


def test_another_browser_is_told_the_link_was_used(adhoc):
    visit, token = adhoc
    guest_client(token)
    other = Client()
    for response in (other.get(guest_url(token)), other.post(guest_url(token))):
        assert response.status_code == 410
        assert b"This link has already been used. Ask the doctor for a new one." in (
            response.content
        )
    assert other.get(room(visit)).status_code == 302  # to sign in: it is nobody's visit here


def test_the_guest_may_open_the_link_again(adhoc):
    visit, token = adhoc
    browser = guest_client(token)
    assert browser.get(guest_url(token)).status_code == 200
    response = browser.post(guest_url(token))
    assert response.status_code == 302 and response.url == room(visit)
    assert browser.session[GUEST_VISITS_SESSION_KEY] == [str(visit.pk)]


def test_an_unknown_link_says_so(client, adhoc):
    response = client.get(guest_url("not-a-token"))
    assert response.status_code == 404
    assert b"This link is not valid." in response.content


def test_the_link_of_an_ended_visit_says_so(client, cast, adhoc):
    visit, token = adhoc
    browser = guest_client(token)
    services.visit_end(visit_id=visit.pk, user=cast.doctor.user)
    response = client.get(guest_url(token))
    assert response.status_code == 410 and b"This visit has ended." in response.content
    assert browser.get(room(visit)).status_code == 404


def test_a_guest_whose_link_was_renewed_is_out(cast, adhoc):
    visit, token = adhoc
    browser = guest_client(token)
    services.guest_link_renew(by=cast.doctor, visit=visit)
    assert browser.get(room(visit)).status_code == 404


def test_a_guest_opens_only_their_visit(cast, adhoc, visit):
    guest_visit, token = adhoc
    browser = guest_client(token)
    assert browser.get(room(visit)).status_code == 302
    other_visit, _other = services.visit_create_adhoc(by=cast.doctor, guest_name="Someone")
    assert browser.get(room(other_visit)).status_code == 302


def test_the_doctor_opening_the_guests_link_does_not_spend_it(client, login, cast, adhoc):
    visit, token = adhoc
    login(cast.doctor)
    for response in (client.get(guest_url(token)), client.post(guest_url(token))):
        assert response.status_code == 302 and response.url == room(visit)
    assert link_of(visit).used_at is None


def test_the_guest_may_run_the_connection_test(adhoc):
    visit, token = adhoc
    browser = guest_client(token)
    session = browser.session
    assert _participant_ice_servers(AnonymousUser(), visit.pk, session) == []
    assert is_guest_of(visit, session)
    assert _participant_ice_servers(AnonymousUser(), visit.pk, Client().session) is None


# --- the doctor's pages -----------------------------------------------------------------


def test_the_doctor_opens_a_room_for_a_guest_from_the_dashboard(client, login, cast):
    login(cast.doctor)
    response = client.post(
        reverse("guest_visit_create"), {"guest_name": GUEST, "next": reverse("dashboard")}
    )
    visit = Visit.objects.get(guest_name=GUEST)
    assert response.status_code == 302
    path, _hash, token = response.url.partition("#guest-link=")
    assert path == room(visit)
    assert link_of(visit).token_hash == sha256(token)
    page = client.get(room(visit))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="guest-link-box"' in body and "Copy link" in body
    assert token not in body  # the page's script reads it from the fragment
    assert f"{reverse('patient_create')}?visit={visit.pk}" in body
    assert "guest-link.js" in body
    assert page.context["config"]["keepalivePath"] == reverse("keepalive")


def test_a_room_with_a_patient_has_no_guest_link_box(client, login, cast, visit):
    login(cast.doctor)
    assert b'id="guest-link-box"' not in client.get(room(visit)).content


def test_a_nameless_guest_is_refused_back_on_the_page(client, login, cast):
    login(cast.doctor)
    response = client.post(
        reverse("guest_visit_create"),
        {"guest_name": " ", "next": reverse("visit_list")},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("visit_list")
    assert b"Enter the guest&#x27;s name." in response.content
    assert not Visit.objects.exists()


def test_the_form_goes_back_nowhere_but_our_pages(client, login, cast):
    login(cast.doctor)
    response = client.post(
        reverse("guest_visit_create"), {"guest_name": "", "next": "https://evil.test/"}
    )
    assert response.url == reverse("dashboard")


@pytest.mark.parametrize("who", ["secretary", "clinic_admin", "patient"])
def test_only_doctors_open_rooms_for_guests(client, login, cast, who):
    login(getattr(cast, who))
    assert client.post(reverse("guest_visit_create"), {"guest_name": GUEST}).status_code == 404
    assert not Visit.objects.exists()


def test_the_create_form_is_on_the_doctors_pages_only(client, login, cast):
    login(cast.doctor)
    for page in ("dashboard", "visit_list"):
        assert b"Video visit without a patient record" in client.get(reverse(page)).content
    login(cast.secretary)
    for page in ("dashboard", "visit_list"):
        assert b"Video visit without a patient record" not in client.get(reverse(page)).content


def test_anonymous_is_sent_to_sign_in_to_open_a_room(client):
    response = client.post(reverse("guest_visit_create"), {"guest_name": GUEST})
    assert response.status_code == 302 and response.url.startswith(reverse("account_login"))


def test_the_doctor_renews_the_link(client, login, cast, adhoc):
    visit, old = adhoc
    login(cast.doctor)
    response = client.post(reverse("guest_link_renew", args=[visit.pk]))
    path, _hash, new = response.url.partition("#guest-link=")
    assert path == room(visit) and new and new != old
    assert link_of(visit).token_hash == sha256(new)


@pytest.mark.parametrize("who", ["doctor2", "secretary", "other_doctor", "patient"])
def test_nobody_else_renews_the_link(client, login, cast, adhoc, who):
    visit, token = adhoc
    login(getattr(cast, who))
    assert client.post(reverse("guest_link_renew", args=[visit.pk])).status_code == 404
    assert link_of(visit).token_hash == sha256(token)


@pytest.mark.parametrize("who", ["doctor2", "secretary", "clinic_admin", "other_doctor"])
def test_nobody_else_opens_the_room_of_a_guest_visit(client, login, cast, adhoc, who):
    visit, _token = adhoc
    login(getattr(cast, who))
    assert client.get(room(visit)).status_code == 404


@pytest.mark.parametrize("who", ["doctor", "secretary"])
def test_the_visit_pages_show_a_guest_visit(client, login, cast, adhoc, visit, who):
    guest_visit, _token = adhoc
    Visit.objects.filter(pk=guest_visit.pk).update(
        status=Visit.Status.WAITING, ready_at=timezone.now()
    )
    login(getattr(cast, who))
    for page in ("dashboard", "dashboard_visits", "visit_list", "calendar"):
        response = client.get(reverse(page))
        assert response.status_code == 200, page
        if page != "calendar":
            assert GUEST in response.content.decode(), page
    found = client.get(reverse("visit_list"), {"q": "neri"}).context["upcoming"]
    assert found == [guest_visit]
    guest_visit.guest_name = "Jérôme Nérì"
    guest_visit.save(update_fields=["guest_name"])
    for query in ("jerome neri", "JÉRÔME", "nerì"):  # accents or not, as for patients
        found = client.get(reverse("visit_list"), {"q": query}).context["upcoming"]
        assert found == [guest_visit], query
    found = client.get(reverse("visit_list"), {"q": "esposito"}).context["upcoming"]
    assert found == [visit]


def test_ended_guest_visits_show_on_the_dashboard_and_the_list(client, login, cast, adhoc):
    visit, _token = adhoc
    services.visit_end(visit_id=visit.pk, user=cast.doctor.user)
    login(cast.doctor)
    for page in ("dashboard", "visit_list"):
        assert GUEST in client.get(reverse(page)).content.decode()


# --- saving the guest as a patient from the add-patient page ------------------------------


def add_patient_url(visit) -> str:
    return f"{reverse('patient_create')}?visit={visit.pk}"


def test_the_add_patient_page_starts_with_the_guests_name(client, login, cast, adhoc):
    visit, _token = adhoc
    login(cast.doctor)
    response = client.get(add_patient_url(visit))
    assert response.status_code == 200
    form = response.context["form"]
    assert form["first_name"].value() == "Giulia"
    assert form["last_name"].value() == "Neri"
    assert f'name="visit" value="{visit.pk}"' in response.content.decode()


def test_the_new_patient_gets_the_guests_visit(client, login, cast, adhoc):
    visit, _token = adhoc
    login(cast.doctor)
    response = client.post(
        add_patient_url(visit),
        {
            "visit": str(visit.pk),
            "doctor": cast.doctor.pk,
            "first_name": "Giulia",
            "last_name": "Neri",
            "state": "SSN",
            "national_id": VALID_CF,
        },
    )
    patient = Patient.objects.get(national_id=VALID_CF)
    assert response.status_code == 302
    assert response.url == reverse("patient_detail", args=[patient.pk])
    visit.refresh_from_db()
    assert visit.patient == patient and visit.guest_name == ""
    detail = client.get(response.url)
    assert list(detail.context["visits"]) == [visit]


@pytest.mark.parametrize("who", ["secretary", "doctor2", "other_doctor"])
def test_nobody_else_saves_the_guest_from_the_add_patient_page(client, login, cast, adhoc, who):
    visit, _token = adhoc
    login(getattr(cast, who))
    assert client.get(add_patient_url(visit)).status_code == 404
    response = client.post(
        reverse("patient_create"),
        {"visit": str(visit.pk), "first_name": "G", "last_name": "N", "state": "PRIVATE"},
    )
    assert response.status_code == 404
    assert not Patient.objects.filter(first_name="G").exists()


def test_a_visit_with_a_patient_is_not_a_guest_to_save(client, login, cast, visit):
    login(cast.doctor)
    assert client.get(add_patient_url(visit)).status_code == 404
    assert client.get(f"{reverse('patient_create')}?visit=not-a-uuid").status_code == 404


# --- the visit socket ---------------------------------------------------------------------

TIMEOUT = 3
ORIGIN = b"http://127.0.0.1"


async def open_socket(visit, cookie: str | None):
    headers = [(b"origin", ORIGIN), (b"host", b"127.0.0.1")]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    communicator = WebsocketCommunicator(application, f"/ws/visits/{visit.pk}/", headers=headers)
    connected, code = await communicator.connect(timeout=TIMEOUT)
    return communicator, connected, code


async def receive(communicator) -> dict:
    return json.loads(await communicator.receive_from(timeout=TIMEOUT))


async def guest_visit_and_keys(cast) -> tuple:
    """A visit with a guest, the session key of the browser that spent its link, and the
    session key of the doctor."""
    visit, token = await database_sync_to_async(services.visit_create_adhoc)(
        by=cast.doctor, guest_name=GUEST
    )
    guest_key = await database_sync_to_async(lambda: session_key_of(guest_client(token)))()
    doctor_key = await database_sync_to_async(session_key)(cast.doctor)
    return visit, guest_key, doctor_key


@pytest.mark.django_db(transaction=True)
async def test_the_guest_joins_the_visit_socket_as_the_patient(cast):
    visit, guest_key, doctor_key = await guest_visit_and_keys(cast)
    doctor, connected, _code = await open_socket(visit, doctor_key)
    assert connected
    assert (await receive(doctor))["type"] == "hello"
    guest, connected, _code = await open_socket(visit, guest_key)
    try:
        assert connected
        hello = await receive(guest)
        assert hello["role"] == "patient" and hello["peer"] == guest_peer(visit)
        assert hello["peer"] > f"d{cast.doctor.pk}"  # the doctor offers
        joined = await receive(doctor)
        assert joined == {
            "type": "presence",
            "role": "patient",
            "peer": guest_peer(visit),
            "name": GUEST,
            "state": "joined",
        }
        assert (await receive(guest))["state"] == "here"
        await guest.send_to(text_data=json.dumps({"type": "ready"}))
        assert (await receive(doctor))["status"] == "waiting"
        assert (await receive(guest))["status"] == "waiting"
        await doctor.send_to(text_data=json.dumps({"type": "admit"}))
        assert (await receive(doctor))["status"] == "in_call"
        assert (await receive(guest))["status"] == "in_call"
    finally:
        await guest.disconnect(timeout=TIMEOUT)
        await doctor.disconnect(timeout=TIMEOUT)


@pytest.mark.django_db(transaction=True)
async def test_other_browsers_cannot_join_the_guests_socket(cast):
    visit, token = await database_sync_to_async(services.visit_create_adhoc)(
        by=cast.doctor, guest_name=GUEST
    )
    first = await database_sync_to_async(guest_client)(token)
    # No session at all, or a session that knows nothing of this visit: sign in first.
    for cookie in (None, "not-a-session"):
        _socket, connected, code = await open_socket(visit, cookie)
        assert not connected and code == 4401
    # The first browser after the doctor gave the guest a new link: refused.
    await database_sync_to_async(services.guest_link_renew)(by=cast.doctor, visit=visit)
    key = await database_sync_to_async(session_key_of)(first)
    _socket, connected, code = await open_socket(visit, key)
    assert not connected and code == 4403


@pytest.mark.django_db(transaction=True)
async def test_a_renewed_link_sends_the_guest_in_the_room_away_at_once(cast):
    visit, guest_key, doctor_key = await guest_visit_and_keys(cast)
    doctor, connected, _code = await open_socket(visit, doctor_key)
    assert connected and (await receive(doctor))["type"] == "hello"
    guest, connected, _code = await open_socket(visit, guest_key)
    try:
        assert connected and (await receive(guest))["type"] == "hello"
        assert (await receive(doctor))["state"] == "joined"
        assert (await receive(guest))["state"] == "here"
        await database_sync_to_async(services.guest_link_renew)(by=cast.doctor, visit=visit)
        sent_away = await receive(guest)
        assert sent_away["type"] == "error" and sent_away["code"] == "link_renewed"
        assert "new link" in sent_away["message"]
        closed = await guest.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 4410}
        # The doctor stays, and reads that the guest left (not "reconnecting").
        assert (await receive(doctor))["status"] == "scheduled"  # the window opens anew
        await guest.disconnect(code=4410, timeout=TIMEOUT)  # as the server reports its close
        left = await receive(doctor)
        assert left["type"] == "presence" and left["state"] == "left"
        assert left["peer"] == guest_peer(visit)
        await doctor.send_to(text_data=json.dumps({"type": "ping"}))
        assert (await receive(doctor))["type"] == "pong"
    finally:
        await guest.disconnect(timeout=TIMEOUT)
        await doctor.disconnect(timeout=TIMEOUT)


def test_the_guest_link_path_is_short_and_opaque(adhoc):
    _visit, token = adhoc
    path = urlsplit(guest_url(token)).path
    assert path == f"/g/{token}/"
