from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from consulta.lib.admin import ViewOnlyAdmin
from consulta.patients.access import patient_for_operator
from consulta.patients.models import Patient, PatientBlock, PatientImport


@admin.register(Patient)
class PatientAdmin(ViewOnlyAdmin):
    """Operators find a record here and open its audited tools: the identity correction and
    the blocks. Nothing is edited, added or deleted here: states, archive, the doctor and the
    contacts change in the registry, by the clinic's staff, under its rules and its audit."""

    list_display = ["last_name", "first_name", "national_id", "clinic", "doctor"]
    list_filter = ["clinic"]
    # A correction request names the patient by name and national id ("nome, cognome e CF").
    search_fields = ["last_name", "first_name", "^national_id", "email", "phone"]
    fields = [
        "operator_links",
        "clinic",
        "doctor",
        "first_name",
        "last_name",
        "national_id",
        "date_of_birth",
        "email",
        "phone",
        "state",
        "archived_at",
        "archive_reason",
        "archive_note",
        "user",
        "invited_at",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if str(object_id).isdigit():  # anything else: the admin says no such patient
            patient_for_operator(request.user, int(object_id))  # 404 for non-operators; audited
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=_("Operator actions"))
    def operator_links(self, patient):
        # Identity fields change only through the audited correction, never here.
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a>',
            reverse("patient_correct", args=[patient.pk]),
            _("Correct the identity"),
            reverse("patient_blocks", args=[patient.pk]),
            _("Blocks"),
        )


@admin.register(PatientBlock)
class PatientBlockAdmin(ViewOnlyAdmin):
    """Blocks are set and lifted on the patient's audited blocks page."""

    list_display = ["patient", "area", "reason", "created_at", "lifted_at"]
    list_filter = ["area"]


@admin.register(PatientImport)
class PatientImportAdmin(admin.ModelAdmin):
    list_display = ["created_at", "filename", "doctor", "format", "status"]
    list_filter = ["status", "format"]
    exclude = ["content"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
