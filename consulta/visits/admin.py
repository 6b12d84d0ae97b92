from django.contrib import admin

from consulta.visits.models import Visit


@admin.register(Visit)
class VisitAdmin(admin.ModelAdmin):
    list_display = [
        "scheduled_at",
        "patient",
        "guest_name",
        "doctor",
        "status",
        "started_at",
        "ended_at",
    ]
    list_filter = ["status", "clinic"]
    readonly_fields = ["ready_at", "started_at", "ended_at", "ended_by", "created_by"]
