from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from alerts import delivery, webhooks
from alerts.models import Alert, Incident, WebhookDelivery, WebhookEndpoint
from syncconsole.admin_cells import two_lines
from syncconsole.admin_tools import CappedCountPaginator, ReadOnlyAdmin
from syncconsole.words import counted, relative


class TestEmailForm(forms.Form):
    recipient = forms.EmailField()


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    # Fits 1280 px beside the filters: the rule over its integration (which names the tenant).
    list_display = ("alert", "state_column", "created", "sent")
    list_display_links = ("alert",)
    list_filter = ("rule", "state", "failure")
    list_select_related = ("integration", "integration__tenant", "tenant")
    search_fields = ("integration__name", "tenant__name")
    paginator = CappedCountPaginator
    raw_id_fields = ("integration", "tenant", "incident")

    @admin.display(description="alert", ordering="rule")
    def alert(self, obj):
        return two_lines(obj.get_rule_display(), str(obj.integration) if obj.integration_id else obj.tenant.name)

    @admin.display(description="state", ordering="state")
    def state_column(self, obj):
        return two_lines(obj.get_state_display(), counted(obj.attempts, "attempt"))

    @admin.display(description="raised", ordering="created_at")
    def created(self, obj):
        return relative(obj.created_at)

    @admin.display(description="sent", ordering="sent_at")
    def sent(self, obj):
        return relative(obj.sent_at) if obj.sent_at else "-"

    def get_urls(self):
        return [
            path("test-email/", self.admin_site.admin_view(self.test_email_view), name="alerts_alert_test_email"),
            *super().get_urls(),
        ]

    def test_email_view(self, request):
        if not request.user.has_perm("alerts.view_alert"):
            raise PermissionDenied
        form = TestEmailForm(request.POST or None, initial={"recipient": request.user.email})
        status = 200
        if request.method == "POST":
            if form.is_valid():
                try:
                    delivery.send_test_email(form.cleaned_data["recipient"])
                except delivery.SEND_ERRORS as exc:
                    messages.error(request, f"The email could not be sent: {exc}")
                    status = 502
                else:
                    messages.success(request, f"Test email sent to {form.cleaned_data['recipient']}.")
            else:
                status = 400
        return TemplateResponse(
            request,
            "admin/alerts/test_email.html",
            {**self.admin_site.each_context(request), "title": "Send a test alert email", "form": form, "opts": self.model._meta},
            status=status,
        )


class IncidentForm(forms.ModelForm):
    class Meta:
        model = Incident
        fields = ("note",)


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ("opened_at", "connector", "error_code", "tenants_affected", "resolved_at")
    list_filter = ("connector", "error_code")
    readonly_fields = ("connector", "error_code", "opened_at", "tenants_affected", "resolved_at", "resolved_by")
    fields = ("connector", "error_code", "opened_at", "tenants_affected", "resolved_at", "resolved_by", "note")
    actions = ["resolve"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Resolve selected incidents", permissions=["change"])
    def resolve(self, request, queryset):
        count = queryset.filter(resolved_at=None).update(resolved_at=timezone.now(), resolved_by=request.user)
        for incident in queryset:
            self.log_change(request, incident, "Resolved by staff.")
        self.message_user(request, f"Resolved {counted(count, 'incident')}." if count else "None of them was open.", messages.SUCCESS if count else messages.WARNING)


class WebhookEndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=WebhookEndpoint.Event.choices, required=False, widget=forms.CheckboxSelectMultiple, help_text="None: all events."
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("tenant", "url", "events", "active")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("url", "tenant", "active", "failing_since", "disabled_at")
    list_filter = ("active",)
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)
    readonly_fields = ("failing_since", "disabled_at", "disabled_reason")

    def save_model(self, request, obj, form, change):
        if not change:
            endpoint, secret = webhooks.create_endpoint(obj.tenant, obj.url, form.cleaned_data["events"])
            obj.pk = endpoint.pk
            obj.secret_ciphertext = endpoint.secret_ciphertext
            messages.warning(request, f"Signing secret (shown once, copy it now): {secret}")
            return
        if obj.active:
            obj.disabled_at, obj.disabled_reason, obj.failing_since = None, "", None
        super().save_model(request, obj, form, change)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "event", "endpoint", "state", "attempts", "response_code", "latency_ms", "delivered_at")
    list_filter = ("state", "event")
    list_select_related = ("endpoint",)
    paginator = CappedCountPaginator
    actions = ["resend"]

    @admin.action(description="Send selected deliveries again", permissions=["view"])
    def resend(self, request, queryset):
        copies = [webhooks.resend(d) for d in queryset.select_related("endpoint")]
        for copy in copies:
            self.log_change(request, copy, "Resent by staff.")
        self.message_user(request, f"{counted(len(copies), 'delivery', 'deliveries')} queued again.", messages.SUCCESS)
