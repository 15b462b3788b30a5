"""Admin building blocks every app's console uses (no app's models: any app may import this)."""

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import InvalidPage, Paginator
from django.utils.functional import cached_property


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows: the last page of a huge table is reached by filtering, not by COUNT(*).

    Any CAP + 1 rows tell whether there are more than CAP, so the count does
    not sort them: in the list's order a search that matches few rows would
    walk the sort index through the whole table to collect them.
    """

    CAP = 10_000

    @cached_property
    def count(self):
        return self.object_list.order_by().values("pk")[: self.CAP + 1].count()


class PageFirstChangeList(ChangeList):
    """A changelist that reads its page before it counts: a short page is its own count.

    Django's ChangeList counts the rows first (the paginator's `count`), then
    reads the page, so a search or a filter runs twice. A page holding fewer
    rows than `list_per_page` is the last one: the count is the rows before it
    plus its own, and only a full page (or one past the end) is counted. The
    rows listed, the count shown and the pages linked are Django's.

    Django's order is kept where reading the page first gains nothing: "Show
    all", a paginator with orphans, and a POST (an action over the list needs
    its selection, not the page).

    A deep page (DEEP rows or more skipped) reads the ids of its rows first,
    then the rows: the rows skipped cost an index entry each instead of a
    table row each (and their joins), where an index serves the list's order.
    """

    DEEP = 1000

    def get_results(self, request):
        paginator = self.model_admin.get_paginator(request, self.queryset, self.list_per_page)
        if request.method == "POST" or self.show_all or paginator.orphans or self.page_num < 1:
            return super().get_results(request)
        per_page = self.list_per_page
        skipped = (self.page_num - 1) * per_page
        if skipped >= self.DEEP:
            ids = list(self.queryset.values_list("pk", flat=True)[skipped : skipped + per_page])
            page = self.queryset.filter(pk__in=ids)  # the same order
            listed = len(ids)
        else:
            page = self.queryset[skipped : skipped + per_page]
            listed = len(page)  # reads the page
        if listed < per_page and (listed or self.page_num == 1):
            paginator.count = skipped + listed  # the paginator's cached count: no COUNT query
        result_count = paginator.count
        multi_page = result_count > per_page
        if not multi_page and self.page_num > 1:
            # Django lists a list that fits on one page whatever the page number.
            page = self.queryset._clone()
        elif multi_page:
            try:
                paginator.validate_number(self.page_num)
            except InvalidPage:
                raise IncorrectLookupParameters
        full_result_count = self.root_queryset.count() if self.model_admin.show_full_result_count else None

        self.result_count = result_count
        self.show_full_result_count = self.model_admin.show_full_result_count
        self.show_admin_actions = not self.show_full_result_count or bool(full_result_count)
        self.full_result_count = full_result_count
        self.result_list = page
        self.can_show_all = result_count <= self.list_max_show_all
        self.multi_page = multi_page
        self.paginator = paginator


class PageFirstCount:
    """ModelAdmin mixin: the changelist reads its page before it counts (PageFirstChangeList)."""

    def get_changelist(self, request, **kwargs):
        return PageFirstChangeList


class ReadOnlyAdmin(PageFirstCount, admin.ModelAdmin):
    """Rows written by the engine: looked at, never edited by hand."""

    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class FilteredChangeList(ChangeList):
    """A changelist's filters, search and order without reading a page: what "export this list" reads.

    `queryset` is the list the changelist would show (every page of it); a
    bad filter raises IncorrectLookupParameters (or Django's
    DisallowedModelAdminLookup) as the changelist does.
    """

    def get_results(self, request):
        self.result_list = self.queryset
