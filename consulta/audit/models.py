from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

ACTION_LABELS = {
    "patient.read": _("Opened the record"),
    "patient.open_for_change": _("Opened the record to change it"),
    "patient.create": _("Added the patient"),
    "patient.state": _("Changed the state"),
    "patient.contacts": _("Changed the contacts"),
    "patient.archive": _("Moved to the archive"),
    "patient.restore": _("Restored from the archive"),
    "patient.delete": _("Deleted the patient"),
    "patient.correct": _("Corrected the identity"),
    "patient.invite": _("Sent an invitation"),
    "patient.block": _("Blocked the patient"),
    "patient.unblock": _("Lifted a block"),
    "patient.room_settings": _("Changed the video visit settings"),
    "patient.export": _("Exported patients"),
    "patient.import_start": _("Started an import"),
    "patient.import": _("Imported patients"),
    "patient.import_update": _("Changed by an import"),
    "visit.open": _("Opened the video visit"),
    "visit.create": _("Created a video visit"),
    "visit.create_adhoc": _("Opened a video visit with a guest"),
    "visit.guest_join": _("The guest opened the visit's link"),
    "visit.guest_link_renew": _("Gave the guest a new link"),
    "visit.save_guest": _("Saved the guest as a patient"),
    "clinic.update": _("Changed the clinic's settings"),
    "booking.read": _("Opened a booking"),
    "booking.open_for_change": _("Opened a booking to change it"),
    "booking.create": _("Booked an appointment"),
    "booking.change": _("Changed a booking"),
    "booking.cancel": _("Cancelled a booking"),
    "booking.status": _("Marked a booking done or missed"),
}


class AuditEvent(models.Model):
    """Who read or changed what, when. Rows are only ever added."""

    at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("who"),
    )
    action = models.CharField(_("action"), max_length=64)
    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("patient"),
    )
    target_type = models.CharField(_("kind of record"), max_length=64, blank=True)
    target_id = models.CharField(_("record number"), max_length=64, blank=True)
    detail = models.JSONField(_("details"), default=dict, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-at"]
        indexes = [models.Index(fields=["patient", "at"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} · {self.action_label}"

    @property
    def action_label(self) -> str:
        return str(ACTION_LABELS.get(self.action, self.action))
