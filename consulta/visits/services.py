"""Writes on visits. Each transition locks the row, checks who asks, and publishes after
commit: the full state to the visit's group, a doorbell to the clinic's dashboards."""

import logging
import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from consulta.accounts.models import StaffMember
from consulta.accounts.services import hash_token
from consulta.audit.services import audit_record
from consulta.lib.errors import DomainError
from consulta.lib.realtime import (
    clinic_visits_group,
    publish_all_on_commit,
    publish_on_commit,
    visit_group,
)
from consulta.notifications.services import email_send_templated
from consulta.notifications.tasks import send_email_message, send_sms_message
from consulta.patients.access import patients_visible_to
from consulta.patients.models import Patient
from consulta.patients.services import patient_create
from consulta.visits.models import GuestLink, RoomSettings, Visit

log = logging.getLogger(__name__)

# A visit "for now" may be created a little in the past (the form took a minute to fill).
_PAST_TOLERANCE = timedelta(minutes=5)
# A call "in progress" for longer than this was left open, not held: it blocks no admission.
ABANDONED_AFTER = timedelta(hours=12)


def visit_create(*, by: StaffMember, patient: Patient, scheduled_at: datetime | None) -> Visit:
    if not by.is_doctor:
        raise DomainError(_("Only a doctor can create a video visit."), code="forbidden")
    if not patients_visible_to(by).filter(pk=patient.pk).exists():
        raise DomainError(_("This patient is not one of your patients."), code="forbidden")
    now = timezone.now()
    if scheduled_at is None:
        scheduled_at = now
    elif timezone.is_naive(scheduled_at):
        raise DomainError(_("The visit time needs a time zone."), code="naive_time")
    elif scheduled_at < now - _PAST_TOLERANCE:
        raise DomainError(_("The visit time is in the past. Choose a later time."), code="past")
    with transaction.atomic():
        visit = Visit.objects.create(
            clinic_id=by.clinic_id,
            patient=patient,
            doctor=by,
            scheduled_at=scheduled_at,
            created_by=by.user,
        )
        _publish(visit)
        if patient.email:
            email_send_templated(
                to=patient.email,
                template="visits/email/visit_scheduled",
                context={
                    "visit": visit,
                    "patient": patient,
                    "doctor": by,
                    "url": settings.PUBLIC_URL + reverse("visit_room", args=[visit.pk]),
                    "time_zone": by.clinic.time_zone,
                },
                language=(patient.user.language if patient.user else "")
                or by.clinic.default_language,
            )
    log.info("visit %s created by %s for patient %s", visit.pk, by.user_id, patient.pk)
    return visit


def join_window(visit: Visit) -> tuple[datetime, datetime]:
    """When the patient may enter the waiting room: the clinic's minutes before and after the
    visit's time."""
    clinic = visit.clinic
    return (
        visit.scheduled_at - timedelta(minutes=clinic.join_minutes_before),
        visit.scheduled_at + timedelta(minutes=clinic.join_minutes_after),
    )


def join_refusal(visit: Visit, now: datetime | None = None) -> DomainError | None:
    """Why the patient cannot enter the waiting room now, or None when they can."""
    now = now or timezone.now()
    opens, closes = join_window(visit)
    zone = ZoneInfo(visit.clinic.time_zone)
    if now < opens:
        return DomainError(
            _("You can enter the waiting room from %(time)s.")
            % {"time": date_format(opens.astimezone(zone), "SHORT_DATETIME_FORMAT")},
            code="too_early",
        )
    if now > closes and visit.status == Visit.Status.SCHEDULED:
        return DomainError(
            _("The time to join this visit ended at %(time)s. Please contact the clinic.")
            % {"time": date_format(closes.astimezone(zone), "SHORT_DATETIME_FORMAT")},
            code="too_late",
        )
    return None


def visit_mark_ready(
    *, visit_id, user, now: datetime | None = None, guest_session_key: str | None = None
) -> Visit:
    """The patient (or the guest, by their browser session's key) says "I'm ready" in the
    waiting room, within the join window."""
    with transaction.atomic():
        visit = _locked(visit_id)
        if not _in_patient_seat(visit, user, guest_session_key):
            raise DomainError(_("Only the patient can say they are ready."), code="forbidden")
        if visit.status == Visit.Status.ENDED:
            raise DomainError(_("This visit has already ended."), code="ended")
        if visit.status == Visit.Status.SCHEDULED and (refusal := join_refusal(visit, now)):
            raise refusal
        if visit.status == Visit.Status.SCHEDULED:
            visit.status = Visit.Status.WAITING
            visit.ready_at = timezone.now()
            visit.save(update_fields=["status", "ready_at"])
            _publish(visit)
    return visit


def visit_socket_opened(*, visit_id, peer: str, channel: str) -> None:
    """`channel` is now `peer`'s socket in this visit (a newer one replaces the older)."""
    with transaction.atomic():
        visit = _locked(visit_id)
        visit.sockets[peer] = channel
        visit.save(update_fields=["sockets"])


def visit_socket_closed(*, visit_id, peer: str, channel: str) -> bool:
    """Whether `channel` was still `peer`'s socket: if not, a newer one took over and this
    closing is not the participant's leaving."""
    with transaction.atomic():
        visit = Visit.objects.select_for_update().filter(pk=visit_id).first()
        if visit is None:  # deleted with its patient meanwhile: nothing to keep
            return True
        if visit.sockets.get(peer) != channel:
            return False
        del visit.sockets[peer]
        visit.save(update_fields=["sockets"])
        return True


def visit_leave_waiting(*, visit_id, user, guest_session_key: str | None = None) -> Visit:
    """The patient closed the waiting room before being admitted."""
    with transaction.atomic():
        visit = _locked(visit_id)
        if (
            _in_patient_seat(visit, user, guest_session_key)
            and visit.status == Visit.Status.WAITING
        ):
            visit.status = Visit.Status.SCHEDULED
            visit.ready_at = None
            visit.save(update_fields=["status", "ready_at"])
            _publish(visit)
    return visit


def ongoing_visits(now: datetime | None = None):
    """Visits in their call now: admitted, ended by nobody, and not left open for longer than
    ABANDONED_AFTER (a call nobody ended holds nobody)."""
    return Visit.objects.filter(
        status=Visit.Status.IN_CALL, started_at__gte=(now or timezone.now()) - ABANDONED_AFTER
    )


def visit_admit(*, visit_id, user) -> Visit:
    with transaction.atomic():
        visit = _locked(visit_id)
        if visit.doctor.user_id != user.id:
            raise DomainError(_("Only the visit's doctor can admit the patient."), code="forbidden")
        if visit.status == Visit.Status.ENDED:
            raise DomainError(_("This visit has already ended."), code="ended")
        if visit.status == Visit.Status.SCHEDULED:
            raise DomainError(_("The patient is not in the waiting room yet."), code="not_waiting")
        if visit.status == Visit.Status.WAITING:
            # One patient at a time: the doctor's row serialises two admissions at once.
            StaffMember.objects.select_for_update().get(pk=visit.doctor_id)
            ongoing = (
                ongoing_visits()
                .filter(doctor_id=visit.doctor_id)
                .exclude(pk=visit.pk)
                .select_related("patient")
                .first()
            )
            if ongoing is not None:
                raise DomainError(
                    _("You are still in the video visit with %(name)s: end it first.")
                    % {"name": ongoing.participant_name},
                    code="busy",
                    extra={"visit_url": reverse("visit_room", args=[ongoing.pk])},
                )
            # (calls' services use this module: imported here.)
            from consulta.calls.services import calls_end_left_by

            calls_end_left_by(staff=visit.doctor)  # a call page closed without hanging up
            call_id = _internal_call_of(visit.doctor_id)
            if call_id is not None:
                raise DomainError(
                    _("You are in a call with a colleague: hang up first."),
                    code="busy",
                    extra={"call_url": reverse("call_room", args=[call_id])},
                )
            visit.status = Visit.Status.IN_CALL
            visit.started_at = visit.started_at or timezone.now()
            visit.save(update_fields=["status", "started_at"])
            _publish(visit)
    return visit


def _internal_call_of(staff_id: int):
    """The id of the call with a colleague that the person is in, if any."""
    from consulta.calls.models import InternalCall

    return (
        InternalCall.objects.filter(
            Q(caller_id=staff_id) | Q(callee_id=staff_id), status=InternalCall.Status.ACCEPTED
        )
        .values_list("pk", flat=True)
        .first()
    )


def visit_end(*, visit_id, user) -> Visit:
    with transaction.atomic():
        visit = _locked(visit_id)
        if visit.doctor.user_id != user.id:
            raise DomainError(_("Only the visit's doctor can end the visit."), code="forbidden")
        if visit.status != Visit.Status.ENDED:
            visit.status = Visit.Status.ENDED
            visit.ended_at = timezone.now()
            visit.ended_by = user
            visit.save(update_fields=["status", "ended_at", "ended_by"])
            _publish(visit)
    return visit


def _in_patient_seat(visit: Visit, user, guest_session_key: str | None) -> bool:
    """The visit's patient by their account, or its guest by the session that redeemed the
    guest link (a renewed link leaves that session out)."""
    patient = visit.patient
    if patient is not None and patient.user_id is not None and patient.user_id == user.id:
        return True
    if not guest_session_key:
        return False
    return GuestLink.objects.filter(
        visit=visit, used_at__isnull=False, session_key_hash=hash_token(guest_session_key)
    ).exists()


def _locked(visit_id) -> Visit:
    visit = (
        Visit.objects.select_for_update(of=("self",))
        .select_related("patient", "doctor__user", "clinic")
        .filter(pk=visit_id)
        .first()
    )
    if visit is None:
        raise DomainError(_("This visit does not exist."), code="not_found")
    return visit


def visit_send_waiting_message(*, visit_id, user, text: str) -> Visit:
    """The doctor tells the waiting patient something ("I'm running 10 minutes late"); an
    empty text takes the message away."""
    text = " ".join((text or "").split())
    if len(text) > 300:
        raise DomainError(_("Keep the message under 300 characters."), code="too_long")
    with transaction.atomic():
        visit = _locked(visit_id)
        if visit.doctor.user_id != user.id:
            raise DomainError(
                _("Only the visit's doctor can write to the patient."), code="forbidden"
            )
        if visit.status == Visit.Status.ENDED:
            raise DomainError(_("This visit has already ended."), code="ended")
        visit.waiting_message = text
        visit.save(update_fields=["waiting_message"])
        _publish(visit)
    return visit


ROOM_SETTING_FIELDS = (
    "shows_self_view",
    "shows_elapsed_time",
    "notify_when_doctor_enters",
    "notify_text",
    "notify_by_email",
    "notify_by_sms",
)


def room_settings_of(patient: Patient | None) -> RoomSettings:
    """The patient's settings, or the defaults (not saved) when the doctor set none or the
    visit is with a guest (patient None)."""
    if patient is None:
        return RoomSettings()
    return RoomSettings.objects.filter(patient=patient).first() or RoomSettings(patient=patient)


def room_settings_save(*, by: StaffMember, patient: Patient, **fields) -> RoomSettings:
    """A doctor of the patient sets how their video visits look and announce themselves."""
    if not by.is_doctor or not patients_visible_to(by).filter(pk=patient.pk).exists():
        raise DomainError(
            _("Only the patient's doctors can change these settings."), code="forbidden"
        )
    unknown = set(fields) - set(ROOM_SETTING_FIELDS)
    if unknown:
        raise ValueError(f"not room settings: {sorted(unknown)}")
    if fields.get("notify_when_doctor_enters") and not (
        fields.get("notify_by_email") or fields.get("notify_by_sms")
    ):
        raise DomainError(_("Choose email, text message or both."), code="no_channel")
    with transaction.atomic():
        settings_row, _created = RoomSettings.objects.update_or_create(
            patient=patient, defaults=fields
        )
        audit_record(
            actor=by.user,
            action="patient.room_settings",
            patient=patient,
            target=settings_row,
            fields=sorted(fields),
        )
        # A patient already in a room (set from the waiting room) sees the change at once.
        event = {
            "type": "visit.settings",
            "self_view": settings_row.shows_self_view,
            "show_elapsed": settings_row.shows_elapsed_time,
        }
        open_visits = Visit.objects.filter(patient=patient, status__in=Visit.OPEN_STATUSES)
        publish_all_on_commit(
            [(visit_group(pk), event) for pk in open_visits.values_list("pk", flat=True)]
        )
    return settings_row


def visit_doctor_entered(*, visit_id, user) -> Visit:
    """The doctor opened the room: the first time, tell the patient if their settings ask
    for it (email and/or text message, in the worker)."""
    with transaction.atomic():
        visit = _locked(visit_id)
        if visit.doctor.user_id != user.id or not visit.is_open or visit.doctor_entered_at:
            return visit
        visit.doctor_entered_at = timezone.now()
        visit.save(update_fields=["doctor_entered_at"])
        if visit.patient is None:  # a guest has only the link the doctor gave them
            return visit
        room = room_settings_of(visit.patient)
        if not room.notify_when_doctor_enters:
            return visit
        patient = visit.patient
        url = settings.PUBLIC_URL + reverse("visit_room", args=[visit.pk])
        language = (patient.user.language if patient.user else "") or visit.clinic.default_language
        with translation.override(language):
            text = room.notify_text or _("Your doctor is in the video visit room: join now.")
            body = f"{text}\n{url}"
            subject = _("Your doctor is ready for your video visit")
        if room.notify_by_email and patient.email:
            transaction.on_commit(
                lambda: send_email_message.enqueue(subject=subject, body=body, to=[patient.email]),
                robust=True,
            )
        if room.notify_by_sms and patient.phone:
            transaction.on_commit(
                lambda: send_sms_message.enqueue(to=patient.phone, body=body), robust=True
            )
    return visit


def visit_state(visit: Visit) -> dict:
    return {
        "status": visit.status,
        "message": visit.waiting_message,
        "started_at": visit.started_at.isoformat() if visit.started_at else None,
        "ended_at": visit.ended_at.isoformat() if visit.ended_at else None,
    }


def _publish(visit: Visit) -> None:
    """The visit's page and the clinic's dashboards and lists, at the same time."""
    publish_all_on_commit(
        [
            (visit_group(visit.pk), {"type": "visit.state", **visit_state(visit)}),
            (clinic_visits_group(visit.clinic_id), {"type": "visits.changed"}),
        ]
    )


# --- a first consultation without a patient record: the guest and their link ------------

GUEST_NAME_MAX = 120


def visit_create_adhoc(*, by: StaffMember, guest_name: str) -> tuple[Visit, str]:
    """A doctor opens a room now for someone who has no record yet. Returns the visit and
    the raw token of its single-use guest link: shown once, only its hash is stored."""
    if not by.is_doctor:
        raise DomainError(_("Only a doctor can create a video visit."), code="forbidden")
    name = " ".join((guest_name or "").split())
    if not name:
        raise DomainError(_("Enter the guest's name."), code="name_required")
    if len(name) > GUEST_NAME_MAX:
        raise DomainError(
            _("Keep the guest's name under %(count)d characters.") % {"count": GUEST_NAME_MAX},
            code="too_long",
        )
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        visit = Visit.objects.create(
            clinic_id=by.clinic_id,
            guest_name=name,
            doctor=by,
            scheduled_at=timezone.now(),
            created_by=by.user,
        )
        GuestLink.objects.create(visit=visit, token_hash=hash_token(token))
        audit_record(actor=by.user, action="visit.create_adhoc", target=visit)
        _publish(visit)
    log.info("visit %s with a guest created by %s", visit.pk, by.user_id)
    return visit, token


def guest_link_refusal(link: GuestLink | None, session_key: str | None) -> DomainError | None:
    """Why this browser cannot use the guest link now, or None when it can. Used to show the
    reason before anything is spent, and again when the link is redeemed."""
    if link is None:
        return DomainError(
            _("This link is not valid. Ask the doctor for a new one."), code="unknown"
        )
    visit = link.visit
    if visit.status == Visit.Status.ENDED:
        return DomainError(_("This visit has ended."), code="ended")
    if link.used_at is not None and (
        not session_key or link.session_key_hash != hash_token(session_key)
    ):
        return DomainError(
            _("This link has already been used. Ask the doctor for a new one."), code="used"
        )
    if link.is_expired():
        return DomainError(
            _("This link has expired. Ask the doctor for a new one."), code="expired"
        )
    if visit.status == Visit.Status.SCHEDULED:
        refusal = join_refusal(visit)
        if refusal is not None and refusal.code == "too_late":
            return refusal
    return None


def guest_link_find(token: str) -> GuestLink | None:
    return (
        GuestLink.objects.select_related("visit__clinic", "visit__doctor__user")
        .filter(token_hash=hash_token(token or ""))
        .first()
    )


def guest_link_redeem(*, token: str, session_key: str) -> Visit:
    """The guest's browser spends the link: the first browser session to do so keeps it
    (it may come back, after a reload or a lost connection); any other is refused."""
    if not session_key:
        raise ValueError("a guest link is bound to a saved session: save it first")
    with transaction.atomic():
        link = (
            GuestLink.objects.select_for_update(of=("self",))
            .select_related("visit__clinic", "visit__doctor__user")
            .filter(token_hash=hash_token(token or ""))
            .first()
        )
        refusal = guest_link_refusal(link, session_key)
        if refusal is not None:
            log.warning(
                "guest link of visit %s refused: %s", link.visit_id if link else None, refusal.code
            )
            raise refusal
        if link.used_at is None:
            link.used_at = timezone.now()
            link.session_key_hash = hash_token(session_key)
            link.save(update_fields=["used_at", "session_key_hash"])
            audit_record(actor=None, action="visit.guest_join", target=link.visit)
    return link.visit


def guest_link_renew(*, by: StaffMember, visit: Visit) -> str:
    """A new link for the guest (they lost it, or opened it on the wrong device): the old
    link, and the browser that used it, stop working. Returns the raw token, shown once."""
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        visit = _locked(visit.pk)
        if visit.doctor_id != by.pk:
            raise DomainError(
                _("Only the visit's doctor can give the guest a new link."), code="forbidden"
            )
        if not visit.is_guest_visit:
            raise DomainError(_("This video visit is not with a guest."), code="not_guest")
        if visit.status == Visit.Status.ENDED:
            raise DomainError(_("This visit has already ended."), code="ended")
        now = timezone.now()
        GuestLink.objects.update_or_create(
            visit=visit,
            defaults={
                "token_hash": hash_token(token),
                "created_at": now,
                "used_at": None,
                "session_key_hash": "",
            },
        )
        # A browser still in the room with the old link is sent away, at once.
        publish_on_commit(visit_group(visit.pk), {"type": "visit.guest_revoked"})
        if visit.status == Visit.Status.SCHEDULED:
            # The guest never got in: the join window opens again from now.
            visit.scheduled_at = now
            visit.save(update_fields=["scheduled_at"])
            _publish(visit)
        audit_record(actor=by.user, action="visit.guest_link_renew", target=visit)
    return token


def visit_guest_to_new_patient(*, by: StaffMember, visit: Visit, **patient_fields) -> Patient:
    """Add the guest of a visit to the registry (`patient_create`'s fields) and give them
    the visit: both happen, or neither does."""
    with transaction.atomic():
        patient = patient_create(by=by, **patient_fields)
        visit_save_guest_as_patient(by=by, visit=visit, patient=patient)
    return patient


def visit_save_guest_as_patient(*, by: StaffMember, visit: Visit, patient: Patient) -> Visit:
    """After the doctor has added the guest to the registry: the visit becomes the
    patient's, and the guest's name goes (the record has it now)."""
    with transaction.atomic():
        visit = _locked(visit.pk)
        if visit.doctor_id != by.pk:
            raise DomainError(
                _("Only the visit's doctor can save the guest as a patient."), code="forbidden"
            )
        if not visit.is_guest_visit:
            raise DomainError(_("This video visit is already with a patient."), code="not_guest")
        if not patients_visible_to(by).filter(pk=patient.pk).exists():
            raise DomainError(_("This patient is not one of your patients."), code="forbidden")
        visit.patient = patient
        visit.guest_name = ""
        visit.save(update_fields=["patient", "guest_name"])
        audit_record(actor=by.user, action="visit.save_guest", patient=patient, target=visit)
        _publish(visit)
    log.info("guest of visit %s saved as patient %s by %s", visit.pk, patient.pk, by.user_id)
    return visit
