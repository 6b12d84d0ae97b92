"""A calendar column's entries (bookings and free slots), built in Python like the
registry's rows: a group practice's day is hundreds of entries, and through the template
engine each costs a tenth of a millisecond."""

from django import template
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from consulta.scheduling.models import Booking, ContactMode
from consulta.visits.models import Visit

register = template.Library()


def _hhmm(moment) -> str:
    return f"{moment.hour:02d}:{moment.minute:02d}"


def _booking(entry, tz) -> str:
    b = entry["booking"]
    starts, ends = b.starts_at.astimezone(tz), b.ends_at.astimezone(tz)
    waiting = b.visit is not None and b.visit.status == Visit.Status.WAITING
    if b.status != Booking.Status.BOOKED or b.visit is None:
        state = Booking.Status(b.status).label
    else:
        state = Visit.Status(b.visit.status).label
    meta = f"{b.appointment_type.name} · {ContactMode(b.contact_mode).label}"
    if entry["participant"]:
        meta += " · " + _("with %(doctor)s") % {"doctor": b.clinician}
    return (
        f'<li class="booking type-{b.appointment_type_id} status-{b.status}'
        f'{" waiting" if waiting else ""}"><a href="{reverse("booking_detail", args=[b.pk])}">'
        f'<time datetime="{starts.isoformat()}">{_hhmm(starts)}–{_hhmm(ends)}</time>'
        f"<strong>{escape(b.patient.last_name)} {escape(b.patient.first_name)}</strong>"
        f'<span class="meta">{escape(meta)}</span>'
        f'<span class="state">{escape(state)}</span></a></li>'
    )


def _free(entry, tz, doctor_id: int, book: str, free_label: str) -> str:
    local = entry["at"].astimezone(tz)
    time = _hhmm(local)
    start = int(entry["at"].timestamp())
    links = "".join(
        f'<a class="slot type-{kind.pk}" href="{book}?doctor={doctor_id}&amp;start={start}'
        f'&amp;type={kind.pk}" aria-label="'
        f'{escape(_("Book %(type)s at %(time)s") % {"type": kind.name, "time": time})}">'
        f"{escape(kind.name)}</a>"
        for kind, _slot in entry["free"]
    )
    return (
        f'<li class="free"><time datetime="{local.isoformat()}">{time}</time>'
        f'<span class="visually-hidden">{free_label}</span>{links}</li>'
    )


@register.simple_tag
def calendar_entries(column, tz) -> SafeString:
    """The column's bookings and free slots in time order, or a line saying there are none."""
    if not column["entries"]:
        return format_html('<p class="empty">{}</p>', _("Nothing booked and no free time."))
    book = reverse("booking_new")
    free_label = escape(_("free:"))
    doctor_id = column["doctor"].pk
    items = [
        _booking(entry, tz) if "booking" in entry else _free(entry, tz, doctor_id, book, free_label)
        for entry in column["entries"]
    ]
    return mark_safe("<ul>" + "".join(items) + "</ul>")  # noqa: S308 - all text escaped above
