"""Searching and sorting the registry's lists.

On PostgreSQL, migration 0003 adds GIN trigram indexes on exactly the expressions these
lookups compile to (`UPPER("col"::text) LIKE UPPER('%term%')` for icontains, `"col"::text
LIKE '%digits%'` for the phone), so a word of three characters or more is looked up in the
indexes rather than by reading every patient of the list."""

import re

from django.db.models import CharField, F, Func, Q, QuerySet, Value

from consulta.patients.models import Patient

SORTS = {
    "name": ("last_name", "first_name", "pk"),
    "-name": ("-last_name", "-first_name", "-pk"),
    "national_id": ("national_id", "pk"),
    "doctor": ("doctor__user__last_name", "last_name", "pk"),
    "newest": ("-created_at", "-pk"),
}
MAX_WORDS = 5
# Trigram indexes can answer LIKE '%term%' only from three characters on.
INDEXED_LENGTH = 3
# Left on a searched queryset (an alias, never selected) for sort_patients to see.
_SEARCHED = "_search_indexed"
# Text columns that a b-tree index may return in order (see sort_patients).
_INDEXED_TEXT_KEYS = ("last_name", "national_id")


class _NotFromIndex(Func):
    """`(col || '')`: the same values in the same order (same type and collation), but an
    expression that no b-tree index provides."""

    template = "(%(expressions)s || '')"
    output_field = CharField()


# A whole query made of these characters may be a phone number as people write it.
_PHONE_LIKE = re.compile(r"\+?[\d\s().\-/]+")
_PHONE_MIN_DIGITS = 6


def _word_condition(word: str) -> Q:
    condition = (
        Q(last_name__icontains=word)
        | Q(first_name__icontains=word)
        | Q(national_id__icontains=word)
        | Q(email__icontains=word)
    )
    digits = re.sub(r"\D", "", word)
    if len(digits) >= 3:
        condition |= Q(phone__contains=digits)
    return condition


def _phone_condition(query: str) -> Q | None:
    """The whole query as one phone number, against the stored E.164 digits: "+39 333 123
    4567" as written; "06 12 34 56 78" without its trunk 0 (+33 6 12 34 56 78); "0047 ..."
    without its international 00."""
    if not _PHONE_LIKE.fullmatch(query):
        return None
    digits = re.sub(r"\D", "", query)
    if len(digits) < _PHONE_MIN_DIGITS:
        return None
    condition = Q(phone__contains=digits)
    if digits.startswith("00"):
        condition |= Q(phone__contains=digits[2:])
    elif digits.startswith("0"):
        condition |= Q(phone__contains=digits[1:])
    return condition


def search_patients(qs: QuerySet[Patient], query: str) -> QuerySet[Patient]:
    """Every word must match a name, the national id, the email or (digits) the phone; or the
    whole query, read as a phone number, must match the phone."""
    words = query.split()[:MAX_WORDS]
    if not words:
        return qs
    condition = Q()
    for word in words:
        condition &= _word_condition(word)
    phone = _phone_condition(query.strip())
    qs = qs.filter(condition | phone if phone is not None else condition)
    if any(len(word) >= INDEXED_LENGTH for word in words):
        qs = qs.alias(**{_SEARCHED: Value(True)})
    return qs


def sort_patients(qs: QuerySet[Patient], sort: str) -> QuerySet[Patient]:
    """Order a list. When a word of the search can use the trigram indexes, the first sort key
    is wrapped so that PostgreSQL finds the matches through those indexes and then sorts them.
    Otherwise, with LIMIT 25 (or LIMIT 1, when the count was 1), the planner may instead walk
    a name index in order and test every patient until enough match: fine when matches are
    everywhere in the alphabet, but a national id or a surname late in the alphabet then reads
    the whole list (a quarter of a second for 100,000 patients)."""
    keys = list(SORTS.get(sort, SORTS["name"]))
    first = keys[0].lstrip("-")
    if _SEARCHED in qs.query.annotations and first in _INDEXED_TEXT_KEYS:
        expression = _NotFromIndex(F(first))
        keys[0] = expression.desc() if keys[0].startswith("-") else expression.asc()
    return qs.order_by(*keys)
