from django.contrib import admin

from consulta.calls.models import InternalCall, RingSettings


@admin.register(InternalCall)
class InternalCallAdmin(admin.ModelAdmin):
    list_display = ["created_at", "caller", "callee", "status", "answered_at", "ended_at"]
    list_filter = ["status", "clinic"]
    readonly_fields = ["created_at", "answered_at", "ended_at", "ended_by"]


@admin.register(RingSettings)
class RingSettingsAdmin(admin.ModelAdmin):
    list_display = ["user", "tone", "volume", "updated_at"]
