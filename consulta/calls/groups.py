"""Channel-layer groups of the calls app: one per resource, never a global one."""


def staff_group(staff_id: int) -> str:
    """Every open page of one staff member: incoming calls and what becomes of them."""
    return f"staff.{staff_id}"


def clinic_staff_group(clinic_id: int) -> str:
    """Every open page of a clinic's staff: who is online, offline or in a call."""
    return f"clinic.{clinic_id}.staff"


def call_group(call_id) -> str:
    """The two call pages of one internal call: state, presence and signalling."""
    return f"call.{call_id}"
