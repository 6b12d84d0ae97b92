from django.apps import apps
from django.contrib import admin
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from consulta.audit.models import ACTION_LABELS, AuditEvent
from consulta.lib.admin import ViewOnlyAdmin


class ActionFilter(admin.SimpleListFilter):
    """The actions by the names the record pages use, in the operator's language."""

    title = _("action")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return sorted(
            ((code, label) for code, label in ACTION_LABELS.items()), key=lambda c: str(c[1])
        )

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ViewOnlyAdmin):
    list_display = ["at", "actor", "what", "patient", "record", "ip"]
    exclude = ["action", "target_type", "target_id"]
    readonly_fields = ["what", "record"]
    search_fields = ["actor__email", "target_id", "patient__last_name", "patient__national_id"]
    list_filter = [ActionFilter, "at"]
    list_select_related = ["actor", "patient"]

    @admin.display(description=_("action"), ordering="action")
    def what(self, event):
        return event.action_label

    @admin.display(description=_("record"))
    def record(self, event):
        """The kind of record by its name in the operator's language, and its number."""
        if not event.target_type:
            return "—"
        try:
            model = apps.get_model(event.target_type)
        except LookupError:
            return f"{event.target_type} {event.target_id}"
        return f"{capfirst(model._meta.verbose_name)} {event.target_id}"
