from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from consulta.patients.models import Patient, PatientBlock, PatientImport


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["last_name", "first_name", "clinic", "doctor"]
    list_filter = ["clinic"]
    search_fields = ["last_name", "first_name", "email"]
    autocomplete_fields = ["user"]
    readonly_fields = ["first_name", "last_name", "national_id", "operator_links"]

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
class PatientBlockAdmin(admin.ModelAdmin):
    list_display = ["patient", "area", "reason", "created_at", "lifted_at"]
    list_filter = ["area"]

    def has_add_permission(self, request):
        return False  # through the audited blocks page

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PatientImport)
class PatientImportAdmin(admin.ModelAdmin):
    list_display = ["created_at", "filename", "doctor", "format", "status"]
    list_filter = ["status", "format"]
    exclude = ["content"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
