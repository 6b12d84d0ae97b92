"""Who sees which patients: the lookups every registry page goes through (patients/access.py)."""

import pytest
from django.http import Http404

from consulta.accounts.models import CareTeam
from consulta.audit.models import AuditEvent
from consulta.patients.access import (
    patient_for_staff,
    patients_in_tab,
    patients_visible_to,
    tabs_for,
)
from consulta.patients.models import Patient
from tests.patients.conftest import add_patient

State = Patient.State
Reason = Patient.ArchiveReason


def names(queryset) -> set[str]:
    return set(queryset.values_list("last_name", flat=True))


# --- who sees whom -------------------------------------------------------------------------


def test_doctor_sees_their_own_patients_and_their_group_colleagues(cast):
    assert names(patients_visible_to(cast.doctor)) == {"Esposito", "Conti"}
    assert names(patients_visible_to(cast.doctor2)) == {"Esposito", "Conti"}


def test_doctor_does_not_see_the_patients_of_a_doctor_they_do_not_work_with(cast, loner):
    add_patient(loner, "Ugo", "Lontano")
    assert "Lontano" not in names(patients_visible_to(cast.doctor))
    assert names(patients_visible_to(loner)) == {"Lontano"}


def test_doctor_in_no_team_sees_only_their_own_patients(cast, group):
    group.members.remove(cast.doctor2)
    assert names(patients_visible_to(cast.doctor)) == {"Esposito"}
    assert names(patients_visible_to(cast.doctor2)) == {"Conti"}


def test_doctor_never_sees_the_patients_of_another_clinic(cast):
    assert "Durand" not in names(patients_visible_to(cast.doctor))
    assert names(patients_visible_to(cast.other_doctor)) == {"Durand"}


def test_doctor_sees_archived_and_private_patients_of_the_doctors_they_work_with(cast):
    add_patient(cast.doctor2, "Pia", "Privata", state=State.PRIVATE)
    add_patient(cast.doctor2, "Ada", "Archiviata", archived=Reason.OTHER, archive_note="moved")
    assert {"Privata", "Archiviata"} <= names(patients_visible_to(cast.doctor))


def test_network_doctor_sees_the_network_colleagues_patients(cast, network):
    _, doctor3, _ = network
    assert names(patients_visible_to(cast.doctor)) == {"Esposito", "Conti", "Galli"}
    # The third doctor is in the network only: the group practice stays closed to them.
    assert names(patients_visible_to(doctor3)) == {"Galli", "Esposito"}


def test_secretary_sees_the_patients_of_the_doctors_of_the_teams_they_serve(cast, secretary):
    assert names(patients_visible_to(secretary)) == {"Esposito", "Conti"}


def test_secretary_serving_only_the_network_sees_only_the_network(cast, network):
    team, _, _ = network
    team.members.add(cast.secretary)
    assert names(patients_visible_to(cast.secretary)) == {"Esposito", "Galli"}


def test_secretary_in_no_team_sees_nobody(cast):
    assert not patients_visible_to(cast.secretary).exists()
    assert not patients_in_tab(cast.secretary, "group").exists()
    assert not patients_in_tab(cast.secretary, "archive").exists()


def test_clinic_administrator_sees_no_patient_and_has_no_tabs(cast):
    assert not patients_visible_to(cast.clinic_admin).exists()
    assert tabs_for(cast.clinic_admin) == []
    with pytest.raises(Http404):
        patients_in_tab(cast.clinic_admin, "group")


def test_a_doctor_of_another_clinic_in_a_team_with_the_same_name_sees_none_of_ours(cast):
    team = CareTeam.objects.create(
        clinic=cast.other_clinic, name="Gruppo Alfa", kind=CareTeam.Kind.GROUP
    )
    team.members.add(cast.other_doctor)
    assert names(patients_visible_to(cast.other_doctor)) == {"Durand"}
    for tab in tabs_for(cast.other_doctor):
        assert not {"Esposito", "Conti"} & names(patients_in_tab(cast.other_doctor, tab))


# --- tabs ------------------------------------------------------------------------------------


def test_doctor_has_mine_group_private_and_archive_tabs(cast):
    assert tabs_for(cast.doctor) == ["mine", "group", "private", "archive"]


def test_network_tab_appears_only_for_a_doctor_in_a_network_team(cast, network):
    assert tabs_for(cast.doctor) == ["mine", "group", "network", "private", "archive"]
    assert "network" not in tabs_for(cast.doctor2)


def test_secretary_has_group_private_and_archive_tabs(cast, secretary):
    assert tabs_for(secretary) == ["group", "private", "archive"]


def test_secretary_serving_a_network_gets_the_network_tab(cast, network):
    network[0].members.add(cast.secretary)
    assert tabs_for(cast.secretary) == ["group", "network", "private", "archive"]


@pytest.fixture
def registry(cast):
    """One patient of each kind for the cast's doctor, and some of the colleague's."""
    return {
        "temporary": add_patient(cast.doctor, "Tea", "Temporanea", state=State.SSN_TEMPORARY),
        "private": add_patient(cast.doctor, "Pio", "Privato", state=State.PRIVATE),
        "revoked": add_patient(
            cast.doctor, "Rita", "Revocata", state=State.SSN_REVOKED, archived=Reason.SSN_REVOKED
        ),
        "deceased": add_patient(
            cast.doctor, "Dino", "Defunto", state=State.SSN_DECEASED, archived=Reason.SSN_DECEASED
        ),
        "archived_private": add_patient(
            cast.doctor, "Alma", "Altrove", state=State.PRIVATE, archived=Reason.OTHER
        ),
        "colleague_temporary": add_patient(
            cast.doctor2, "Tito", "Transito", state=State.SSN_TEMPORARY
        ),
        "colleague_private": add_patient(cast.doctor2, "Pina", "Pagante", state=State.PRIVATE),
        # Revoked or deceased but not archived (e.g. by an import): not on the active lists.
        "colleague_revoked": add_patient(cast.doctor2, "Remo", "Revocato", state=State.SSN_REVOKED),
    }


def test_my_patients_holds_my_ssn_and_temporary_patients_not_archived(cast, registry):
    assert names(patients_in_tab(cast.doctor, "mine")) == {"Esposito", "Temporanea"}
    assert names(patients_in_tab(cast.doctor2, "mine")) == {"Conti", "Transito"}


def test_group_practice_holds_the_active_ssn_patients_of_every_doctor_of_the_group(cast, registry):
    expected = {"Esposito", "Temporanea", "Conti", "Transito"}
    assert names(patients_in_tab(cast.doctor, "group")) == expected
    assert names(patients_in_tab(cast.doctor2, "group")) == expected


def test_group_practice_of_a_doctor_in_no_group_holds_their_own_patients(cast, group):
    group.members.clear()
    assert names(patients_in_tab(cast.doctor, "group")) == {"Esposito"}


def test_group_practice_leaves_out_the_network_colleagues(cast, network):
    assert "Galli" not in names(patients_in_tab(cast.doctor, "group"))


def test_network_tab_holds_the_network_colleagues_active_patients(cast, network):
    _, doctor3, _ = network
    add_patient(doctor3, "Ivo", "Ritirato", state=State.SSN_REVOKED, archived=Reason.SSN_REVOKED)
    add_patient(doctor3, "Ida", "Pagante", state=State.PRIVATE)
    tab = names(patients_in_tab(cast.doctor, "network"))
    assert "Galli" in tab
    assert not {"Conti", "Ritirato", "Pagante"} & tab


def test_private_tab_holds_the_private_patients_not_archived(cast, registry):
    assert names(patients_in_tab(cast.doctor, "private")) == {"Privato", "Pagante"}


def test_archive_tab_holds_every_archived_patient_whatever_the_state(cast, registry):
    assert names(patients_in_tab(cast.doctor, "archive")) == {"Revocata", "Defunto", "Altrove"}


def test_secretary_tabs_hold_the_group_practices_patients(cast, registry, secretary):
    assert names(patients_in_tab(secretary, "group")) == {
        "Esposito",
        "Temporanea",
        "Conti",
        "Transito",
    }
    assert names(patients_in_tab(secretary, "private")) == {"Privato", "Pagante"}
    assert names(patients_in_tab(secretary, "archive")) == {"Revocata", "Defunto", "Altrove"}


@pytest.mark.parametrize(
    ("who", "tab"),
    [
        ("doctor", "network"),
        ("doctor", "everything"),
        ("secretary", "mine"),
        ("clinic_admin", "archive"),
    ],
)
def test_a_tab_the_person_does_not_have_is_not_found(cast, who, tab):
    with pytest.raises(Http404):
        patients_in_tab(getattr(cast, who), tab)


# --- one record --------------------------------------------------------------------------------


def test_opening_a_visible_record_is_audited(cast):
    assert patient_for_staff(cast.doctor2, cast.patient.pk) == cast.patient
    event = AuditEvent.objects.get(action="patient.read")
    assert (event.actor, event.patient) == (cast.doctor2.user, cast.patient)


@pytest.mark.parametrize("who", ["other_doctor", "clinic_admin", "secretary"])
def test_a_record_out_of_reach_is_not_found_and_not_audited(cast, who):
    with pytest.raises(Http404):
        patient_for_staff(getattr(cast, who), cast.patient.pk)
    with pytest.raises(Http404):
        patient_for_staff(None, cast.patient.pk)
    assert not AuditEvent.objects.exists()
