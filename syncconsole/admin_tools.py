"""Admin building blocks every app's console uses (no app's models: any app may import this)."""

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property


class CappedCountPaginator(Paginator):
    """Counts at most CAP rows: the last page of a huge table is reached by filtering, not by COUNT(*)."""

    CAP = 10_000

    @cached_property
    def count(self):
        return self.object_list.values("pk")[: self.CAP + 1].count()


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the engine: looked at, never edited by hand."""

    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
