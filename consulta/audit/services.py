from collections.abc import Iterable

from django.db import models

from consulta.audit.context import client_ip
from consulta.audit.models import AuditEvent


def audit_record(
    *, actor, action: str, patient=None, target: models.Model | None = None, **detail
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        patient=patient,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        detail=detail,
        ip=client_ip.get(),
    )


def audit_each_patient(*, actor, action: str, details: Iterable[tuple[int, dict]]) -> None:
    """One row per patient, `details` giving (patient id, detail) pairs, written together: for
    what one action does to many patients at once (an import's updates and archives), so each
    patient's own trail shows it."""
    actor = actor if actor is not None and actor.is_authenticated else None
    ip = client_ip.get()
    AuditEvent.objects.bulk_create(
        (
            AuditEvent(
                actor=actor,
                action=action,
                patient_id=patient_id,
                target_type="patients.patient",
                target_id=str(patient_id),
                detail=detail,
                ip=ip,
            )
            for patient_id, detail in details
        ),
        batch_size=2000,
    )
