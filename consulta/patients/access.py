"""Permission-checked lookups of patients. Every read of a record goes through here.

Doctors see their own patients and those of the doctors in their care teams (group
practice and network); secretaries see the patients of the doctors in the teams they serve;
clinic administrators manage the clinic, not patient records. Anyone else gets 404."""

from django.db.models import QuerySet
from django.http import Http404

from consulta.accounts.models import CareTeam, StaffMember
from consulta.audit.services import audit_record
from consulta.patients.models import Patient

TABS = ("mine", "group", "network", "private", "archive")


def registry_staff(staff: StaffMember | None) -> StaffMember:
    """Doctors and secretaries work in the registry; anyone else gets 404."""
    if staff is None or not staff.works_in_registry:
        raise Http404
    return staff


def care_teams(staff: StaffMember) -> dict[str, set[int]]:
    """{kind: doctor ids} of the care teams `staff` belongs to, in one query. A doctor is in
    their own teams' sets. Callers that need it twice pass it on as `teams`."""
    membership = CareTeam.members.through
    teams: dict[str, set[int]] = {}
    for kind, doctor_id in membership.objects.filter(
        careteam__members=staff,
        staffmember__role=StaffMember.Role.DOCTOR,
        staffmember__clinic_id=staff.clinic_id,
    ).values_list("careteam__kind", "staffmember_id"):
        teams.setdefault(kind, set()).add(doctor_id)
    return teams


def team_doctor_ids(
    staff: StaffMember,
    kinds=(CareTeam.Kind.GROUP, CareTeam.Kind.NETWORK),
    teams: dict[str, set[int]] | None = None,
) -> set[int]:
    """The doctors of the care teams of these kinds that `staff` belongs to."""
    teams = care_teams(staff) if teams is None else teams
    return set().union(*(teams.get(kind, set()) for kind in kinds))


def visible_doctor_ids(staff: StaffMember, teams: dict[str, set[int]] | None = None) -> set[int]:
    if staff.role == StaffMember.Role.DOCTOR:
        return team_doctor_ids(staff, teams=teams) | {staff.pk}
    if staff.role == StaffMember.Role.SECRETARY:
        return team_doctor_ids(staff, teams=teams)
    return set()


def patients_visible_to(
    staff: StaffMember, teams: dict[str, set[int]] | None = None
) -> QuerySet[Patient]:
    return Patient.objects.filter(
        clinic_id=staff.clinic_id, doctor_id__in=visible_doctor_ids(staff, teams)
    )


def tabs_for(staff: StaffMember, teams: dict[str, set[int]] | None = None) -> list[str]:
    if staff.role == StaffMember.Role.DOCTOR:
        tabs = ["mine", "group"]
    elif staff.role == StaffMember.Role.SECRETARY:
        tabs = ["group"]
    else:
        return []
    teams = care_teams(staff) if teams is None else teams
    if CareTeam.Kind.NETWORK in teams:
        tabs.append("network")
    return [*tabs, "private", "archive"]


def patients_in_tab(staff: StaffMember, tab: str, teams: dict[str, set[int]] | None = None):
    """The list behind one tab of the registry; 404 for a tab the person doesn't have.
    `teams` is care_teams(staff) when the caller has it already."""
    teams = care_teams(staff) if teams is None else teams
    if tab not in tabs_for(staff, teams):
        raise Http404
    qs = patients_visible_to(staff, teams).select_related("doctor__user", "user")
    active_ssn = qs.filter(archived_at__isnull=True, state__in=Patient.ACTIVE_SSN_STATES)
    if tab == "mine":
        return active_ssn.filter(doctor=staff)
    if tab == "group":
        return active_ssn.filter(
            doctor_id__in=team_doctor_ids(staff, [CareTeam.Kind.GROUP], teams)
            | ({staff.pk} if staff.is_doctor else set())
        )
    if tab == "network":
        return active_ssn.filter(
            doctor_id__in=team_doctor_ids(staff, [CareTeam.Kind.NETWORK], teams)
        )
    if tab == "private":
        return qs.filter(archived_at__isnull=True, state=Patient.State.PRIVATE)
    return qs.filter(archived_at__isnull=False)


def patient_for_staff(staff: StaffMember | None, pk: int, *, action: str = "patient.read"):
    """Return the patient or raise 404 for anyone outside its care; audit the access."""
    if staff is None:
        raise Http404
    patient = (
        patients_visible_to(staff).select_related("doctor__user", "user").filter(pk=pk).first()
    )
    if patient is None:
        raise Http404
    audit_record(actor=staff.user, action=action, patient=patient, target=patient)
    return patient


def patient_for_operator(user, pk: int, *, action: str = "patient.read") -> Patient:
    """Platform operators reach any record, to correct identities; always audited."""
    if not (user.is_authenticated and user.is_staff):
        raise Http404
    patient = Patient.objects.select_related("clinic", "doctor__user").filter(pk=pk).first()
    if patient is None:
        raise Http404
    audit_record(actor=user, action=action, patient=patient, target=patient)
    return patient


def import_for_staff(staff: StaffMember | None, pk):
    """An import of a doctor the person works with; 404 for anyone else."""
    from consulta.patients.models import PatientImport

    if staff is None:
        raise Http404
    job = (
        PatientImport.objects.filter(
            pk=pk, clinic_id=staff.clinic_id, doctor_id__in=visible_doctor_ids(staff)
        )
        .select_related("doctor__user")
        .first()
    )
    if job is None:
        raise Http404
    return job
