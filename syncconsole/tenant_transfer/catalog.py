"""Every kind of line, in file order, with the relations read from the models.

Above the apps: it reads each app's declaration. The order is the file's: a
row comes after what it points at, except the relations to a later kind,
which an import sets once every line is in (`Relation.deferred`).
"""

from functools import cache

from django.core.exceptions import ImproperlyConfigured

from alerts import transfer as alerts_part
from audit import transfer as audit_part
from integrations import transfer as integrations_part
from issues import transfer as issues_part
from syncconsole.tenant_transfer import users as users_part
from syncconsole.tenant_transfer.kinds import Relation

PARTS = (users_part, integrations_part, issues_part, alerts_part, audit_part)
KINDS = tuple(kind for part in PARTS for kind in part.KINDS)
BY_NAME = {kind.name: kind for kind in KINDS}
BY_MODEL = {kind.model: kind for kind in KINDS}
LEFT_OUT = {label: why for part in PARTS for label, why in part.LEFT_OUT.items()}


@cache
def relations(kind):
    """The kind's foreign keys, each with the kind it points at."""
    position = KINDS.index(kind)
    found = []
    for field in kind.model._meta.concrete_fields:
        if not field.is_relation or field.name not in kind.columns():
            continue
        if field.name in kind.unlinked:
            continue
        target = BY_MODEL.get(field.related_model)
        if target is None:
            raise ImproperlyConfigured(
                f"{kind.name}.{field.name} points at {field.related_model._meta.label}, which no kind "
                "declares: declare it, or name the field in the kind's `unlinked`."
            )
        deferred = not target.shared and KINDS.index(target) >= position
        found.append(Relation(field.name, field.attname, target.name, field.null, deferred))
    return tuple(found)


def exported(without=()):
    """The kinds an export writes rows of, in order (shared kinds come along when referenced)."""
    unknown = set(without) - {kind.name for kind in KINDS if kind.optional}
    if unknown:
        raise ImproperlyConfigured(f"Only optional kinds can be left out, not {', '.join(sorted(unknown))}.")
    chosen = [kind for kind in KINDS if not kind.shared and kind.name not in without]
    for kind in chosen:
        for relation in relations(kind):
            if relation.target in without and not relation.null:
                raise ImproperlyConfigured(
                    f"{kind.name}.{relation.field} cannot be null, so {relation.target} cannot be left out."
                )
    return chosen
