"""Permission-checked lookups of colleagues and internal calls. Internal calls involve staff
only and carry no patient data: nothing here reads patient records, so nothing is audited
on read (the services audit every change)."""

import logging
import uuid
from typing import Literal

from django.db.models import QuerySet
from django.http import Http404

from consulta.accounts.models import StaffMember
from consulta.calls.models import InternalCall

Role = Literal["caller", "callee"]
log = logging.getLogger("consulta.access")


def colleagues_of(staff: StaffMember) -> QuerySet[StaffMember]:
    """Everyone on the staff of the person's own clinic, the person included."""
    return (
        StaffMember.objects.filter(clinic_id=staff.clinic_id, user__is_active=True)
        .select_related("user")
        .order_by("user__last_name", "user__first_name", "pk")
    )


def colleague_for_staff(staff: StaffMember, colleague_id) -> StaffMember:
    """A staff member of the same clinic, or 404 (another clinic's staff do not exist here)."""
    try:
        return colleagues_of(staff).get(pk=int(colleague_id))
    except (ValueError, TypeError, StaffMember.DoesNotExist):
        raise Http404 from None


def call_role(user, call: InternalCall) -> Role | None:
    if not user.is_authenticated or not user.is_active:
        return None
    if call.caller.user_id == user.id:
        return "caller"
    if call.callee.user_id == user.id:
        return "callee"
    return None


def call_for_participant(user, call_id) -> tuple[InternalCall, Role]:
    """The call and the user's side of it, or 404 for anyone but its two people."""
    try:
        call_uuid = uuid.UUID(str(call_id))
    except ValueError:
        raise Http404 from None
    call = (
        InternalCall.objects.select_related("caller__user", "callee__user", "clinic")
        .filter(pk=call_uuid)
        .first()
    )
    role = call_role(user, call) if call is not None else None
    if role is None:
        log.warning("internal call %s refused to user %s: not a participant", call_uuid, user.pk)
        raise Http404
    return call, role
