from django.contrib import admin
from django.db.models import Count

from integrations.models import ApiKey, Integration, Membership, Tenant


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ("name", "key_prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("name", "key_prefix", "created_at", "last_used_at")

    def has_add_permission(self, request, obj=None):
        return False


class IntegrationInline(admin.TabularInline):
    model = Integration
    extra = 0
    fields = ("name", "connector", "status", "last_success_at")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "environment", "integration_count", "last_api_request_at")
    list_filter = ("environment",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (MembershipInline, ApiKeyInline, IntegrationInline)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_integrations=Count("integrations"))

    @admin.display(description="integrations", ordering="_integrations")
    def integration_count(self, obj):
        return obj._integrations


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "tenant", "role", "receives_alerts")
    list_filter = ("role", "receives_alerts")
    list_select_related = ("user", "tenant")
    search_fields = ("user__username", "user__email", "tenant__name")
    autocomplete_fields = ("user", "tenant")
