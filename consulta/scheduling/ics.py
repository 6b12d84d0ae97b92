"""Calendar files (RFC 5545) for bookings: the email attachment and each clinician's feed."""

from datetime import UTC, datetime

from django.utils import translation
from django.utils.translation import gettext as _
from icalendar import Calendar as ICalendar
from icalendar import Event

PRODID = "-//Consulta//Calendar//EN"


def _event(booking, *, for_clinician: bool) -> Event:
    event = Event()
    event.add("uid", f"{booking.pk}@consulta")
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", booking.starts_at.astimezone(UTC))
    event.add("dtend", booking.ends_at.astimezone(UTC))
    # Later changes replace the event in the patient's calendar program.
    event.add("sequence", int(booking.updated_at.timestamp()) if booking.updated_at else 0)
    if for_clinician:
        event.add("summary", f"{booking.appointment_type.name}: {booking.patient.full_name}")
        if booking.internal_notes:
            event.add("description", booking.internal_notes)
    else:
        event.add(
            "summary",
            _("%(type)s with %(clinician)s")
            % {"type": booking.appointment_type.name, "clinician": booking.clinician},
        )
        text = "\n\n".join(
            t
            for t in (booking.appointment_type.patient_information, booking.notes_for_patient)
            if t
        )
        if text:
            event.add("description", text)
    event.add("location", booking.get_contact_mode_display())
    event.add("status", "CANCELLED" if booking.status == "cancelled" else "CONFIRMED")
    return event


def booking_ics(booking, *, language: str) -> str:
    """One booking, as the patient sees it, in their language."""
    with translation.override(language):
        calendar = ICalendar()
        calendar.add("prodid", PRODID)
        calendar.add("version", "2.0")
        calendar.add("method", "PUBLISH")
        calendar.add_component(_event(booking, for_clinician=False))
        return calendar.to_ical().decode()


def feed_ics(clinician, bookings) -> bytes:
    """A clinician's bookings for their phone's calendar (a private feed)."""
    calendar = ICalendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", str(clinician))
    for booking in bookings:
        calendar.add_component(_event(booking, for_clinician=True))
    return calendar.to_ical()
