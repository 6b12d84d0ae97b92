from django.contrib import admin

from consulta.patients.models import Patient


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["last_name", "first_name", "clinic", "doctor"]
    list_filter = ["clinic"]
    search_fields = ["last_name", "first_name", "email"]
    autocomplete_fields = ["user"]
