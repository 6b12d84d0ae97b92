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
