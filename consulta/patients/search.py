"""Searching and sorting the registry's lists.

A word is looked for anywhere in the names and the phone, and from the start of the national
id and of the email: `search_text` is a column the database keeps (names and phone,
upper-cased without accents, separated by spaces: see consulta.lib.folding), and each word
compiles to

    search_text LIKE '%WORD%' OR national_id LIKE 'WORD%' OR UPPER(email) LIKE 'WORD%'

(the database folds the word exactly as it folded the column, on SQLite as on PostgreSQL,
so "niccolo" finds "Niccolò"). On PostgreSQL, migration 0008 keeps a GIN trigram index on
`search_text` and b-tree indexes that answer the two prefixes, so a word of three characters
or more is looked up in the indexes rather than by reading every patient of the list. People
type a national id or an email from its start; their trigrams took a third of an import's
time in the database."""

import re

from django.core.paginator import Page, Paginator
from django.db.models import CharField, F, Func, Q, QuerySet, Value
from django.db.models.functions import Upper
from django.db.models.lookups import StartsWith

from consulta.lib.folding import Folded
from consulta.patients.models import Patient

SORTS = {
    "name": ("last_name", "first_name", "pk"),
    "-name": ("-last_name", "-first_name", "-pk"),
    "national_id": ("national_id", "pk"),
    "doctor": ("doctor__user__last_name", "last_name", "pk"),
    "newest": ("-created_at", "-pk"),
}
MAX_WORDS = 5
# A trigram index can answer LIKE '%term%' only from three characters on.
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


def _contains(text: str) -> Q:
    return Q(search_text__contains=Folded(Value(text)))


def _starts(word: str) -> Q:
    """The national id or the email begins with the word. (`national_id <> ''` is the unique
    index's condition, written out so that PostgreSQL may read that index.)"""
    upper = Upper(Value(word))
    return (Q(national_id__startswith=upper) & ~Q(national_id="")) | Q(
        StartsWith(Upper("email"), upper)
    )


def _word_condition(word: str) -> Q:
    """The word in a name, at the start of the national id or the email; or, for a piece of a
    phone number as people write it, its digits ("333-12" finds +3933312…; a codice
    fiscale's digits don't)."""
    condition = _contains(word) | _starts(word)
    if _PHONE_LIKE.fullmatch(word):
        digits = re.sub(r"\D", "", word)
        if len(digits) >= 3 and digits != word:
            condition |= _contains(digits)
    return condition


def _phone_condition(query: str) -> Q | None:
    """The whole query as one phone number, against the stored E.164 digits: "+39 333 123
    4567" as written; "06 12 34 56 78" without its trunk 0 (+33 6 12 34 56 78); "0047 ..."
    without its international 00. (The digits are looked for in names and phone.)"""
    if not _PHONE_LIKE.fullmatch(query):
        return None
    digits = re.sub(r"\D", "", query)
    if len(digits) < _PHONE_MIN_DIGITS:
        return None
    condition = _contains(digits)
    if digits.startswith("00"):
        condition |= _contains(digits[2:])
    elif digits.startswith("0"):
        condition |= _contains(digits[1:])
    return condition


# What people put between the groups of a national id they write out: "1 85 05 78 006 084
# 36" (a French NIR), "010190 12345" (a Norwegian fødselsnummer), "RSS-MRA".
_ID_SEPARATORS = re.compile(r"[\s.\-/]+")


def _national_id_condition(query: str) -> Q | None:
    """The whole query as a national id written in groups: its letters and digits, from the
    start of the national id (a single word is looked up as such already)."""
    compact = _ID_SEPARATORS.sub("", query)
    if compact == query or len(compact) < INDEXED_LENGTH or not compact.isalnum():
        return None
    return Q(national_id__startswith=Upper(Value(compact))) & ~Q(national_id="")


def search_patients(qs: QuerySet[Patient], query: str) -> QuerySet[Patient]:
    """Every word must match a name, the start of the national id or of the email, or
    (digits) the phone; or the whole query, read as a phone number, must match the phone,
    or, read as a national id written in groups, the start of the national id."""
    words = query.split()[:MAX_WORDS]
    if not words:
        return qs
    condition = Q()
    for word in words:
        condition &= _word_condition(word)
    query = query.strip()
    for whole in (_phone_condition(query), _national_id_condition(query)):
        if whole is not None:
            condition |= whole
    qs = qs.filter(condition)
    if any(len(word) >= INDEXED_LENGTH for word in words):
        qs = qs.alias(**{_SEARCHED: Value(True)})
    return qs


def sort_patients(qs: QuerySet[Patient], sort: str) -> QuerySet[Patient]:
    """Order a list. When a word of the search can use the trigram index, the first sort key
    is wrapped so that PostgreSQL finds the matches through that index and then sorts them.
    Otherwise, with a LIMIT (a page, or the 1,001 ids of a search), the planner may instead
    walk a name index in order and test every patient until enough match: fine when matches
    are everywhere in the alphabet, but a national id or a surname late in the alphabet then
    reads the whole list (a quarter of a second for 100,000 patients)."""
    keys = list(SORTS.get(sort, SORTS["name"]))
    first = keys[0].lstrip("-")
    if _SEARCHED in qs.query.annotations and first in _INDEXED_TEXT_KEYS:
        expression = _NotFromIndex(F(first))
        keys[0] = expression.desc() if keys[0].startswith("-") else expression.asc()
    return qs.order_by(*keys)


# A search's matches are counted up to here: "more than 1,000" is as useful as the exact
# number, and counting thousands of matches costs more than the search itself.
COUNT_LIMIT = 1000


class _Paginator(Paginator):
    """`more` says there were more matches than the paginator holds (see patients_page)."""

    more = False


def patients_page(
    qs: QuerySet[Patient], number, per_page: int, count_limit: int | None = None
) -> Page:
    """One page of a sorted list. The sort reads only ids and sort keys, and only the page's
    patients are loaded, with their doctor and account: sorting thousands of matches with
    every joined column attached costs more than the search.

    A search (`count_limit` given) reads the ids of its first `count_limit` + 1 matches, in
    order, in one query. Those ids are the count ("more" when there is one over the limit) and
    every page there is, at once: a count of its own looked for the matches a second time.
    (When a word can use the trigram index, the database finds and sorts every match anyway,
    so keeping 1,001 ids instead of 26 costs little.) The page's patients are then loaded
    from `qs` again, so a patient who left the list in between is not shown. A list with no
    search has an exact count; its first page is read before the count, which it makes
    unnecessary when it holds the whole list."""
    ids = qs.values_list("pk", flat=True)
    if count_limit is not None:
        found = list(ids[: count_limit + 1])
        paginator = _Paginator(found[:count_limit], per_page)
        paginator.more = len(found) > count_limit
        page = paginator.get_page(number)
        page.object_list = _load(page.object_list, qs)
        return page
    paginator = _Paginator(ids, per_page)
    if str(number or "1") == "1":
        patients = _load(ids[: per_page + 1], qs)
        if len(patients) <= per_page:
            paginator.count = len(patients)  # a cached property: the count query never runs
        return Page(patients[:per_page], 1, paginator)
    page = paginator.get_page(number)
    page.object_list = _load(page.object_list, qs)
    return page


# What a row of the list shows (patient_rows in templatetags/registry.py): the other columns
# of a patient, their account and their doctor's account are not read. Every timestamp read
# is parsed in Python; a page of whole rows held eight per patient.
ROW_FIELDS = (
    "first_name",
    "last_name",
    "national_id",
    "state",
    "email",
    "archived_at",
    "invited_at",
    "user__last_login",
    "doctor__title",
    "doctor__user__first_name",
    "doctor__user__last_name",
    "doctor__user__email",
)


def _load(ids, qs: QuerySet[Patient]) -> list[Patient]:
    """The patients of `qs` with these ids (a list, or a sorted slice of `qs`'s ids, which
    holds its conditions), with what their rows show, in the ids' order."""
    if isinstance(ids, list):
        patients = qs.filter(pk__in=ids).select_related("doctor__user", "user")
        by_id = {patient.pk: patient for patient in patients.only(*ROW_FIELDS).order_by()}
        return [by_id[pk] for pk in ids if pk in by_id]
    patients = Patient.objects.filter(pk__in=ids).select_related("doctor__user", "user")
    return list(patients.only(*ROW_FIELDS).order_by(*ids.query.order_by))
