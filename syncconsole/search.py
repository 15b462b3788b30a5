"""The admin's search, written so that indexes serve it (no app's models: any app may import this).

Django's `ModelAdmin.get_search_results` turns `search_fields` into one WHERE
clause over joined tables: on PostgreSQL `UPPER(col::text) LIKE UPPER(%s)`
per field, OR-ed, with a JOIN per related field (and DISTINCT over the
joined rows when the relation is a reverse one). Over a big table that reads
every row: a pg_trgm index on `col` does not serve `UPPER(col)`, and an OR
whose arms sit in different tables cannot be answered from one table's
indexes.

`indexed_search()` reads the same notation and finds the same rows, with
every arm of the OR on the searched table's own columns, so that PostgreSQL
can answer the OR by combining one index scan per arm (a BitmapOr):

- a field of the model: `col ILIKE 'term%'` (`^field`) or `col ILIKE
  '%term%'` (a plain field), which a trigram index serves; `=field` is
  Django's `iexact`; a field with a lookup (`external_id__exact`) is that
  lookup, which a btree serves;
- through a relation, the related rows are read first (a small query on a
  small table) and their ids written into the query: a foreign key
  (`integration__name`) becomes `integration_id IN (3, 17)`, a reverse one
  (`account_mappings__vendor_account_id`) `id IN (12)`. An index serves
  each, no row is joined twice (so no DISTINCT), and the planner knows how
  many ids there are. It estimates a subquery instead: half the rows for
  an `EXISTS` or `IN (SELECT ...)` in an OR, ten ids for `= ANY(ARRAY(SELECT
  ...))`; over 20,000 integrations a search that finds one then seq-scans
  them and hash-joins every session. No id: Django leaves the arm out. A
  term found in more than IDS_WRITTEN_OUT related rows is common, and there
  the subquery's estimate is about right: `IN (SELECT ...)` for a foreign
  key, `EXISTS (SELECT ... WHERE integration_id = outer.id ...)` for a
  reverse one.

On SQLite `ILIKE` is Django's `LIKE` (case-insensitive there). The trigram
indexes are created by issues/migrations/0006_search_indexes.py, on
PostgreSQL only.
"""

import operator
from functools import reduce

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Exists, F, OuterRef, Q, lookups
from django.utils.text import smart_split, unescape_string_literal


class _ILike:
    """On PostgreSQL `col::text ILIKE pattern`, where Django writes `UPPER(col::text) LIKE UPPER(pattern)`."""

    def as_postgresql(self, compiler, connection):
        if not self.rhs_is_direct_value() or self.bilateral_transforms:
            return self.as_sql(compiler, connection)
        lhs_sql, lhs_params = compiler.compile(self.lhs)
        rhs_sql, rhs_params = self.process_rhs(compiler, connection)  # the term, escaped, with its %
        return f"{lhs_sql}::text ILIKE {rhs_sql}", (*lhs_params, *rhs_params)


class ILikeContains(_ILike, lookups.IContains):
    pass


class ILikeStartsWith(_ILike, lookups.IStartsWith):
    pass


def search_terms(search_term):
    """The words of the search box, a "quoted phrase" as one: Django's admin splits them the same way."""
    terms = []
    for bit in smart_split(search_term):
        if bit.startswith(('"', "'")) and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        terms.append(bit)
    return terms


def indexed_search(queryset, search_fields, search_term):
    """(queryset, may_have_duplicates), as `ModelAdmin.get_search_results` returns them.

    Every term must be found in at least one of the fields, as in Django's
    admin. No JOIN is added, so no row can appear twice: the second value is
    always False. Each relation searched costs a query on its table per term.
    """
    terms = search_terms(search_term) if search_term else []
    if not (search_fields and terms):
        return queryset, False
    model = queryset.model
    for term in terms:
        queryset = queryset.filter(
            reduce(operator.or_, (_arm(model, str(spec), term) for spec in search_fields))
        )
    return queryset, False


_MODES = {"^": ILikeStartsWith, "=": "iexact"}

# Ids found through a relation are written into the query up to this many.
IDS_WRITTEN_OUT = 1000


def _arm(model, spec, term):
    mode = _MODES.get(spec[:1], ILikeContains)
    path = spec[1:] if spec[:1] in _MODES else spec
    return _match(model, path.split("__"), mode, term, spec)


def _match(model, parts, mode, term, spec):
    """Q: `term` found along `parts` (a path from `model`) the way `mode` says."""
    opts = model._meta
    name = opts.pk.name if parts[0] == "pk" else parts[0]
    field = opts.get_field(name)
    rest = parts[1:]
    if field.is_relation and rest and field.get_lookup(rest[0]) is None:
        inner = _match(field.related_model, rest, mode, term, spec)
        related = field.related_model._base_manager.filter(inner).order_by()
        if field.concrete and (field.many_to_one or field.one_to_one):
            here, there = field.attname, field.target_field.attname  # a foreign key holds their ids
        elif not field.concrete and (field.one_to_many or field.one_to_one):
            here, there = field.field.target_field.attname, field.field.attname  # theirs holds ours
        else:
            raise ImproperlyConfigured(
                f"search field {spec!r}: {name} is neither a foreign key nor a reverse one."
            )
        ids = list(related.values_list(there, flat=True)[: IDS_WRITTEN_OUT + 1])
        if len(ids) <= IDS_WRITTEN_OUT:
            return Q(**{f"{here}__in": ids})  # no id: Django leaves the arm out
        if field.concrete:
            return Q(**{f"{here}__in": related.values(there)})
        return Q(Exists(related.filter(**{there: OuterRef(here)})))
    if rest:  # the field names its lookup: `external_id__exact`
        if len(rest) > 1 or field.get_lookup(rest[0]) is None:
            raise ImproperlyConfigured(f"search field {spec!r}: {'__'.join(rest)} is not a lookup of {name}.")
        return Q(**{f"{name}__{rest[0]}": term})
    if mode == "iexact":
        return Q(**{f"{name}__iexact": term})
    return Q(mode(F(name), term))
