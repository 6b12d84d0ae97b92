"""The registry list's rows, built in Python like the admin's change-list cells: a page of 25
patients through the template engine cost more than the search that found them."""

from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

register = template.Library()

# A wastebasket drawn here rather than the emoji, which shows as an empty box where the
# computer has no emoji font (many Linux desktops, kiosks).
TRASH_ICON = mark_safe(  # noqa: S308 - a constant
    '<svg class="icon" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true" '
    'focusable="false"><path fill="currentColor" fill-rule="evenodd" '
    'd="M6 1h4l.5 1H14v2H2V2h3.5zM3 5h10l-.9 10H3.9zM6 7v6h1V7zm3 0v6h1V7z"/></svg>'
)


@register.simple_tag
def invitation_status(patient) -> SafeString:
    """Never invited, invited on DATE, or joined (has signed in)."""
    status = patient.invitation_status
    if status == "joined":
        return format_html('<span class="status status-in_call">{}</span>', _("Joined"))
    if status == "invited":
        invited = date_format(timezone.localtime(patient.invited_at), "SHORT_DATE_FORMAT")
        return format_html(
            '<span class="status">{}</span>', _("Invited on %(date)s") % {"date": invited}
        )
    return format_html('<span class="status">{}</span>', _("Never invited"))


@register.simple_tag
def patient_rows(patients, can_change_state: bool, can_restore: bool, back: str) -> SafeString:
    """One <tr> per patient: name (a link to the record), national id, state, doctor,
    invitation status, and the row's actions menu (the "three dots") and trash icon.
    The "Invite" buttons submit the list's one #invite-form to their patient's address;
    deleting returns to `back`, this list."""
    back_query = "?" + urlencode({"next": back})
    labels = {
        "invite": _("Invite"),
        "invite_again": _("Invite again"),
        "change_state": _("Change state"),
        "archive": _("Move to archive"),
        "restore": _("Restore"),
        "delete": _("Delete for good"),
    }
    return format_html_join(
        "\n",
        "{}",
        ((_row(p, labels, can_change_state, can_restore, back_query),) for p in patients),
    )


def _row(patient, labels, can_change_state, can_restore, back_query) -> SafeString:
    detail = reverse("patient_detail", args=[patient.pk])
    delete = reverse("patient_delete", args=[patient.pk]) + back_query
    actions = []
    if not patient.is_archived:
        if patient.email and patient.invitation_status != "joined":
            actions.append(
                format_html(
                    '<button type="submit" form="invite-form" formaction="{}" class="link">'
                    "{}</button>",
                    reverse("patient_invite", args=[patient.pk]),
                    labels["invite_again"] if patient.invited_at else labels["invite"],
                )
            )
        if can_change_state and patient.state != patient.State.PRIVATE:
            actions.append(
                format_html('<a href="{}#change-state">{}</a>', detail, labels["change_state"])
            )
        actions.append(format_html('<a href="{}#archive">{}</a>', detail, labels["archive"]))
    else:
        if can_restore:
            actions.append(format_html('<a href="{}#restore">{}</a>', detail, labels["restore"]))
        actions.append(format_html('<a href="{}">{}</a>', delete, labels["delete"]))
    trash = ""
    if patient.is_archived or not can_change_state:
        trash = format_html(
            '<a class="trash" href="{}" title="{}">{}<span class="visually-hidden">{}</span></a>',
            delete,
            labels["delete"],
            TRASH_ICON,
            _("Delete %(name)s for good") % {"name": patient.full_name},
        )
    return format_html(
        '<tr data-patient-id="{pk}">'
        '<td><a href="{detail}">{last} {first}</a></td>'
        '<td class="mono">{national_id}</td>'
        "<td>{state}</td>"
        "<td>{doctor}</td>"
        "<td>{invitation}</td>"
        '<td class="row-actions"><details class="menu">'
        '<summary aria-label="{menu_label}">⋯</summary><ul>{actions}</ul></details>{trash}</td>'
        "</tr>",
        pk=patient.pk,
        detail=detail,
        last=patient.last_name,
        first=patient.first_name,
        national_id=patient.national_id,
        state=patient.state_label,
        doctor=str(patient.doctor),
        invitation=invitation_status(patient),
        menu_label=_("Actions for %(name)s") % {"name": patient.full_name},
        actions=format_html_join("", "<li>{}</li>", ((a,) for a in actions)),
        trash=trash,
    )
