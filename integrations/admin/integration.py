"""The integration changelist and page: the screen support staff live on."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from integrations import connection_test, mapping, selectors
from integrations.admin import actions as staff_actions
from integrations.admin import buttons as action_buttons
from integrations.admin import page_panels, panels, settings_form
from integrations.admin.interval import HELP as INTERVAL_HELP
from integrations.admin.interval import IntervalInput, interval_words
from integrations.admin import progress as live_progress
from integrations.admin.common import relative, status_badge
from integrations.advice import SUPPORT, advice_for, supersedes_catalog
from integrations.models import AccountMapping, Integration, IntegrationEvent, ReauthLink, SyncSession
from integrations.reauth import link_state
from integrations.words import counted
from issues.models import SyncIssue
from syncconsole import limits
from syncconsole.admin_cells import two_lines
from syncconsole.admin_errors import MissingPermission
from syncconsole.admin_tools import PageFirstCount
from integrations.admin.changelist import (
    LIST_DEFERRED,
    ConnectorFilter,
    HasOpenIssuesFilter,
    IntegrationChangeList,
    NeedsAttentionFilter,
)
from syncconsole.search import indexed_search


class AccountMappingInline(admin.TabularInline):
    model = AccountMapping
    extra = 0
    fields = ("vendor_account_id", "vendor_account_name", "tenant_account", "ignored")
    readonly_fields = ("vendor_account_id", "vendor_account_name")

    def has_add_permission(self, request, obj=None):
        return False


FACT_FIELDS = (
    "status",
    "status_changed_at",
    "status_reason",
    "last_outcome",
    "last_outcome_at",
    "last_error_code",
    "consecutive_unsuccessful",
    "unsuccessful_since",
    "auth_failing_since",
    "quality_assurance_since",
    "deactivated_at",
    "deleted_at",
    "first_sync_finished_at",
    "mapping_complete",
    "sync_cursor",
    "next_sync_at",
    "paused",
    "paused_reason",
)


def _bulk_action(spec):
    def action(modeladmin, request, queryset):
        return modeladmin.run_bulk_action(request, queryset, spec)

    action.__name__ = f"bulk_{spec.name}"
    return admin.action(description=f"{spec.label}…", permissions=[spec.permission])(action)




@admin.register(Integration)
class IntegrationAdmin(PageFirstCount, admin.ModelAdmin):
    # Fits 1280 px beside the filters: the name, tenant and connector share a
    # column (long names truncated, whole in the title); the columns support
    # sorts by keep their own (status, last success, unsuccessful in a row,
    # open issues, last sync).
    list_display = (
        "integration",
        "status_column",
        "last_success",
        "unsuccessful",
        "open_issues",
        "last_sync",
    )
    list_display_links = ("integration",)
    list_filter = ("status", NeedsAttentionFilter, HasOpenIssuesFilter, ConnectorFilter, "tenant__environment", "paused")
    list_select_related = ("tenant", "last_session")
    search_fields = ("name", "tenant__name", "tenant__slug", "=account_mappings__vendor_account_id")
    show_full_result_count = False
    list_per_page = 50
    inlines = (AccountMappingInline,)
    actions = [_bulk_action(spec) for spec in staff_actions.SPECS if spec.bulk]
    fieldsets = (
        (None, {"fields": ("tenant", "name", "connector", "kind", "settings", "sync_interval")}),
        ("Facts behind the status", {"classes": ("collapse",), "fields": FACT_FIELDS}),
    )
    # The facts change only through the status machine and the actions. The
    # tenant never changes: the integration's credentials, issues and records
    # belong to it.
    readonly_fields = ("tenant", "connector", "sync_every", *FACT_FIELDS)
    change_form_template = "admin/integrations/integration/change_form.html"

    # -- the form: typed connector settings -----------------------------------

    def _edits_settings(self, request, obj):
        return obj is not None and self.has_change_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        if not self._edits_settings(request, obj):
            # Who only reads the page reads the interval in words ("every 1 hour"), not "1:00:00".
            words = {"sync_interval": "sync_every"}
            return [
                (name, {**options, "fields": tuple(words.get(f, f) for f in options["fields"])})
                for name, options in super().get_fieldsets(request, obj)
            ]
        main, *rest = super().get_fieldsets(request, obj)
        fields = tuple(f for f in main[1]["fields"] if f != "settings")
        connector = (
            f"{obj.connector} connector settings",
            {
                "fields": settings_form.field_names(obj),
                "description": "Empty fields follow the connector's default. "
                "`manage.py connectors " + obj.connector + "` prints the same list.",
            },
        )
        return [(main[0], {**main[1], "fields": fields}), connector, *rest]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "sync_interval":
            kwargs.update(widget=IntervalInput, help_text=INTERVAL_HELP)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="sync interval")
    def sync_every(self, obj):
        return interval_words(obj.sync_interval) or "-"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if self._edits_settings(request, obj):
            kwargs["form"] = settings_form.settings_form_class(self.form, obj)
        return super().get_form(request, obj, change, **kwargs)

    # -- changelist --------------------------------------------------------

    def get_changelist(self, request, **kwargs):
        return IntegrationChangeList

    def get_queryset(self, request):
        # The columns below read these annotations and the stored open-issue
        # count (the portal's list reads the same ones).
        queryset = selectors.with_list_columns(super().get_queryset(request))
        match = getattr(request, "resolver_match", None)
        if match is not None and match.url_name == "integrations_integration_changelist":
            # Nothing the list shows; the session's log alone is up to SESSION_LOG_MAX_ENTRIES lines a row.
            queryset = queryset.defer(*LIST_DEFERRED)
        return queryset

    def get_search_results(self, request, queryset, search_term):
        # The same rows as Django's search, without its DISTINCT over the rows
        # joined to every mapping: the integrations whose mapping has the
        # vendor account id (and the tenants named) are looked up first and
        # OR-ed with the name as ids, EXISTS (AccountMapping ...) for a term
        # in over a thousand mappings; no integration is listed twice
        # (syncconsole/search.py).
        return indexed_search(queryset, self.get_search_fields(request), search_term)

    def save_related(self, request, form, formsets, change):
        """The mapping inline writes rows; their consequences (setup, the first sync) go through the one service."""
        super().save_related(request, form, formsets, change)
        if any(formset.model is AccountMapping and formset.has_changed() for formset in formsets):
            message = mapping.apply_completeness(form.instance, actor=request.user)
            self.message_user(request, message, messages.INFO)

    def has_add_permission(self, request):
        # Integrations are created through onboarding (discovery, mapping,
        # first sync): `manage.py add_integration` or the customer portal.
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting is the soft Delete action; purging is the daily schedule's.
        return False

    # One method per codename the staff actions need (Integration.Meta.permissions):
    # `@admin.action(permissions=["sync_integration"])` calls has_sync_integration_permission,
    # and the action pages and buttons ask the same methods (`may_perform`).

    def has_sync_integration_permission(self, request):
        return request.user.has_perm("integrations.sync_integration")

    def has_send_reauth_link_permission(self, request):
        return request.user.has_perm("integrations.send_reauth_link")

    def has_manage_quality_assurance_permission(self, request):
        return request.user.has_perm("integrations.manage_quality_assurance")

    def has_pause_integration_permission(self, request):
        return request.user.has_perm("integrations.pause_integration")

    def has_deactivate_integration_permission(self, request):
        return request.user.has_perm("integrations.deactivate_integration")

    def has_delete_restore_integration_permission(self, request):
        return request.user.has_perm("integrations.delete_restore_integration")

    def has_revoke_credentials_permission(self, request):
        return request.user.has_perm("integrations.revoke_credentials")

    def may_perform(self, request, spec):
        """Whether the user holds the permission the staff action names, asked as the bulk actions ask it."""
        return getattr(self, f"has_{spec.permission}_permission")(request)

    @admin.display(description="integration", ordering="name")
    def integration(self, obj):
        return two_lines(obj.name, f"{obj.tenant.name} \u00b7 {obj.connector}")

    @admin.display(description="status", ordering="status")
    def status_column(self, obj):
        """The badge, and under it the open session's progress (from the list's annotations)."""
        state = getattr(obj, "sync_state", None)
        if not state:
            return status_badge(obj.status)
        if state == SyncSession.State.QUEUED:
            progress = "sync queued"
        elif obj.sync_total:
            progress = f"syncing {obj.sync_seen:,} / {obj.sync_total:,}"
        else:
            progress = f"syncing, {counted(obj.sync_seen, 'item')}"
        return format_html('{}<span class="sc-sub sc-progress">{}</span>', status_badge(obj.status), progress)

    @admin.display(description="last sync", ordering="last_session__finished_at")
    def last_sync(self, obj):
        return relative(getattr(obj, "last_sync_at", None))

    @admin.display(description="last success", ordering="last_success_at")
    def last_success(self, obj):
        return relative(obj.last_success_at)

    @admin.display(description="unsuccessful in a row", ordering="consecutive_unsuccessful")
    def unsuccessful(self, obj):
        return obj.consecutive_unsuccessful

    @admin.display(description="open issues", ordering="open_issue_count")
    def open_issues(self, obj):
        count = obj.open_issue_count
        if not count:
            return 0
        url = reverse("admin:issues_syncissue_changelist") + f"?integration__id__exact={obj.pk}&state__exact=open"
        return format_html('<a href="{}">{}</a>', url, f"{count:,}")

    # -- the page ------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<path:object_id>/action/<str:name>/",
                self.admin_site.admin_view(self.action_view),
                name="integrations_integration_action",
            ),
            path(
                "<path:object_id>/test-connection/",
                self.admin_site.admin_view(require_POST(self.test_connection_view)),
                name="integrations_integration_test_connection",
            ),
            path(
                "<path:object_id>/progress/",
                self.admin_site.admin_view(require_GET(self.progress_view)),
                name="integrations_integration_progress",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        integration = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if integration is not None:
            extra.update(self.panel_context(request, integration))
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def panel_context(self, request, integration, now=None):
        now = now or timezone.now()
        integration = (
            Integration.objects.select_related("tenant", "quality_assurance_owner", "last_session__error_code")
            .get(pk=integration.pk)
        )
        recent = list(
            integration.sessions.select_related("error_code").order_by("-queued_at")[:30]
        )
        open_session = next((s for s in recent if s.is_open), None)
        last_session = integration.last_session
        unmapped, total_accounts, mappings = panels.unmapped_counts(integration)
        issues = list(
            integration.issues.filter(state=SyncIssue.State.OPEN)
            .select_related("error_code", "record")
            .defer("details")
            .order_by("-last_seen_at")[:21]
        )
        events = list(
            integration.events.exclude(kind=IntegrationEvent.Kind.SESSION_FINISHED)  # the sessions have their own list
            .select_related("actor", "session")
            .order_by("-created_at", "-id")[:30]
        )
        links = list(ReauthLink.objects.filter(integration=integration).select_related("created_by")[:5])
        # Testing the connection syncs nothing; it asks for the permission to start a sync.
        buttons, destructive = action_buttons.action_buttons(
            integration,
            open_session=open_session,
            may_perform=lambda spec: self.may_perform(request, spec),
            may_test_connection=self.has_sync_integration_permission(request),
        )
        return {
            "sc": {
                "integration": integration,
                "now": now,
                "last_session": last_session,
                "open_session": open_session,
                "why": panels.why_status(
                    integration,
                    now=now,
                    last_session=last_session,
                    open_session=open_session,
                    unmapped_accounts=unmapped,
                    total_accounts=total_accounts,
                ),
                "checks": panels.checks(
                    integration,
                    now=now,
                    recent_sessions=recent,
                    connector_failures=panels.connector_failures_last_hour(integration, now),
                    unmapped_accounts=unmapped,
                    total_accounts=total_accounts,
                ),
                "history": panels.history_svg(recent),
                "issues": issues[:20],
                "more_issues": len(issues) > 20,
                "issues_url": reverse("admin:issues_syncissue_changelist")
                + f"?integration__id__exact={integration.pk}&state__exact=open",
                "events": events,
                "mappings": mappings,
                "links": [(link, link_state(link, now)) for link in links],
                "buttons": buttons,
                "destructive_buttons": destructive,
                "progress": live_progress.session_progress(open_session, now) if open_session else None,
                "status_badge": status_badge(integration.status),
                "advice": advice_for(integration, SUPPORT),
                "catalog_advice_superseded": supersedes_catalog(integration),
                # Panels of other apps (alerts: each alert's delivery), registered at start-up.
                "extra_panels": page_panels.render_all(request, integration, now),
            }
        }

    # -- actions ---------------------------------------------------------------

    def action_view(self, request, object_id, name):
        spec = staff_actions.ACTIONS.get(name)
        if spec is None:
            raise Http404(f"No action named {name!r}.")
        integration = self.get_object(request, unquote(object_id))
        if integration is None:
            raise Http404("No such integration.")
        if not self.has_view_permission(request, integration):
            raise MissingPermission("integrations.view_integration", "Opening this integration")
        if not self.may_perform(request, spec):
            raise MissingPermission(f"integrations.{spec.permission}", spec.label)
        change_url = reverse("admin:integrations_integration_change", args=[integration.pk])
        form = staff_actions.make_form(spec, integration, request.POST if request.method == "POST" else None)
        if request.method != "POST" or (form is not None and not form.is_valid()):
            return self.render_action_form(
                request, spec, [integration], form, status=400 if request.method == "POST" else 200
            )
        try:
            result = staff_actions.perform(spec, integration, request.user, form.cleaned_data if form else {})
        except staff_actions.REFUSALS as exc:
            messages.error(request, f"{spec.label} refused: {staff_actions.refusal_text(exc)} Nothing was changed.")
            return HttpResponseRedirect(change_url)
        if spec.name == "send_reauth_link":
            self.log_change(request, integration, f"Sent a re-authentication link to {result.link.recipient}.")
            return TemplateResponse(
                request,
                "admin/integrations/integration/reauth_link_sent.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Re-authentication link sent",
                    "integration": integration,
                    "new": result,
                    "opts": self.model._meta,
                    "change_url": change_url,
                },
            )
        self.log_change(request, integration, f"{spec.label}: {result}")
        messages.success(request, result)
        return HttpResponseRedirect(change_url)

    def test_connection_view(self, request, object_id):
        """POST only: does the vendor answer and accept the credentials? The result as a message; syncs nothing."""
        integration = self.get_object(request, unquote(object_id))
        if integration is None:
            raise Http404("No such integration.")
        if not self.has_view_permission(request, integration):
            raise MissingPermission("integrations.view_integration", "Opening this integration")
        if not self.has_sync_integration_permission(request):
            raise MissingPermission("integrations.sync_integration", "Test connection")
        change_url = reverse("admin:integrations_integration_change", args=[integration.pk])
        try:
            result = connection_test.test_connection(integration, actor=request.user)
        except connection_test.NotTestable as exc:
            messages.error(request, f"The connection was not tested: {exc.message}")
            return HttpResponseRedirect(change_url)
        except limits.Limited as exc:
            messages.error(
                request,
                f"The connection of {integration.name} was tested too often in a short time; "
                f"try again in {limits.describe_wait(exc.retry_after)}.",
            )
            return HttpResponseRedirect(change_url)
        self.log_change(request, integration, f"Tested the connection: {result.summary}")
        if result.ok:
            messages.success(request, f"{result.text} ({result.duration_ms} ms)")
        else:
            messages.error(request, f"Connection test failed: {result.text} ({result.duration_ms} ms)")
        return HttpResponseRedirect(change_url)

    def progress_view(self, request, object_id):
        """The open (or last) session's progress and the status, for the page's script: a few queries."""
        integration = Integration.objects.filter(pk=unquote(object_id)).first() if str(object_id).isdigit() else None
        if integration is None:
            raise Http404("No such integration.")
        if not self.has_view_permission(request, integration):
            raise MissingPermission("integrations.view_integration", "Following this integration's syncs")
        session = integration.sessions.defer("log").order_by("-queued_at").first()
        return JsonResponse(live_progress.progress(integration, session, timezone.now()))

    def render_action_form(self, request, spec, integrations, form, *, bulk=False, status=200):
        return TemplateResponse(
            request,
            "admin/integrations/integration/action_form.html",
            {
                **self.admin_site.each_context(request),
                "title": f"{spec.label}: {counted(len(integrations), 'integration') if bulk else integrations[0]}",
                "spec": spec,
                "integrations": integrations,
                "form": form,
                "bulk": bulk,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
            status=status,
        )

    def run_bulk_action(self, request, queryset, spec):
        integrations = list(queryset.select_related("tenant"))
        if not integrations:
            # "Select all" over a search or filter that matches nothing.
            self.message_user(request, f"{spec.label}: no integration matches; nothing was changed.", messages.WARNING)
            return None
        form = staff_actions.make_form(spec, integrations[0], request.POST if "apply" in request.POST else None)
        if "apply" not in request.POST or (form is not None and not form.is_valid()):
            needs_page = form is not None or spec.destructive
            if needs_page:
                return self.render_action_form(request, spec, integrations, form, bulk=True)
        data = form.cleaned_data if form is not None else {}
        done, refused = [], []
        for integration in integrations:
            try:
                message = staff_actions.perform(spec, integration, request.user, data)
            except staff_actions.REFUSALS as exc:
                refused.append(f"{integration}: {staff_actions.refusal_text(exc)}")
                continue
            self.log_change(request, integration, f"{spec.label} (bulk): {message}")
            done.append(integration)
        if done:
            self.message_user(request, f"{spec.label}: done for {counted(len(done), 'integration')}.", messages.SUCCESS)
        if refused:
            self.message_user(
                request, f"{spec.label} refused for {len(refused)}: " + "; ".join(refused[:10]), messages.ERROR
            )
        return None

