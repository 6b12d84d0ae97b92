import pytest
from django.urls import reverse

from consulta.audit.models import AuditEvent
from consulta.lib.errors import DomainError
from consulta.patients.models import PatientBlock
from consulta.patients.services import patient_block, require_not_blocked


def test_operator_blocks_a_patient_and_the_patients_own_action_is_refused(client, login, cast):
    login(cast.operator)
    response = client.post(
        reverse("patient_blocks", args=[cast.patient.pk]),
        {"area": "agenda", "reason": "Books and never comes"},
    )
    assert response.status_code == 302
    block = PatientBlock.objects.get()
    assert AuditEvent.objects.filter(action="patient.block", patient=cast.patient).exists()
    with pytest.raises(DomainError) as caught:
        require_not_blocked(cast.patient, "agenda")
    assert caught.value.code == "blocked"
    assert "Agenda" in str(caught.value.message)
    require_not_blocked(cast.patient, "chat")  # other areas stay open
    client.post(reverse("patient_blocks", args=[cast.patient.pk]), {"lift": block.pk})
    require_not_blocked(cast.patient, "agenda")


def test_a_block_needs_a_reason_and_is_not_doubled(cast):
    with pytest.raises(DomainError):
        patient_block(operator=cast.operator, patient=cast.patient, area="chat", reason=" ")
    patient_block(operator=cast.operator, patient=cast.patient, area="chat", reason="abuse")
    with pytest.raises(DomainError) as caught:
        patient_block(operator=cast.operator, patient=cast.patient, area="chat", reason="x")
    assert caught.value.code == "duplicate"


def test_staff_see_the_block_on_the_record(client, login, cast):
    patient_block(
        operator=cast.operator, patient=cast.patient, area="documents", reason="Court order"
    )
    login(cast.doctor)
    html = client.get(reverse("patient_detail", args=[cast.patient.pk])).content.decode()
    assert "Medical documents" in html and "Court order" in html


@pytest.mark.parametrize("who", ["doctor", "secretary", "clinic_admin", "patient", "other_doctor"])
def test_only_operators_manage_blocks(client, login, cast, who):
    login(getattr(cast, who))
    url = reverse("patient_blocks", args=[cast.patient.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"area": "chat", "reason": "x"}).status_code == 404
    assert not PatientBlock.objects.exists()
    with pytest.raises(DomainError):
        patient_block(
            operator=getattr(cast, who).user, patient=cast.patient, area="chat", reason="x"
        )
