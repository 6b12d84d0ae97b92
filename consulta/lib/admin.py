from django.contrib import admin


class ViewOnlyAdmin(admin.ModelAdmin):
    """Shown on the admin site, never written there: these rows change only through the
    services that check the rules and write the audit."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
