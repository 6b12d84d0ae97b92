from django.contrib import admin

from consulta.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "actor", "action", "patient", "target_type", "target_id", "ip"]
    search_fields = ["actor__email", "target_id", "patient__last_name", "patient__national_id"]
    list_filter = ["action", "at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
