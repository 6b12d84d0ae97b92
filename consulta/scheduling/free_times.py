"""The "find a free time" list: every free slot of one or several calendars over up to four
weeks, by day and clinician, each a link to book it. Built in Python like the registry's
rows: a group week is two thousand links, which the template engine renders in a second."""

from collections import defaultdict

from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from consulta.scheduling.slots import Slot


def render_free_times(slots: list[Slot], doctors: dict, kinds: dict, tz) -> SafeString:
    """`doctors` and `kinds` map ids to objects; slots of others are left out."""
    if not slots:
        return format_html('<p class="empty">{}</p>', _("No free time in these days."))
    book = reverse("booking_new")
    names = {pk: escape(str(doctor)) for pk, doctor in doctors.items()}
    labels = {pk: escape(kind.name) for pk, kind in kinds.items()}
    by_day: dict = defaultdict(lambda: defaultdict(list))
    for slot in slots:
        if slot.clinician_id not in names or slot.appointment_type_id not in labels:
            continue
        local = slot.starts_at.astimezone(tz)
        by_day[local.date()][slot.clinician_id].append((local, slot))
    parts = []
    for day in sorted(by_day):
        heading = escape(date_format(day, "l j F"))
        parts.append(f'<section class="free-day"><h2>{heading}</h2><ul>')
        for doctor_id, entries in by_day[day].items():
            links = "".join(
                f'<a class="slot type-{s.appointment_type_id}" href="{book}?doctor={doctor_id}'
                f'&amp;start={int(s.start_epoch)}&amp;type={s.appointment_type_id}">'
                f"{local.hour:02d}:{local.minute:02d} {labels[s.appointment_type_id]}</a>"
                for local, s in entries
            )
            parts.append(f'<li><span class="who">{names[doctor_id]}</span> {links}</li>')
        parts.append("</ul></section>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped
