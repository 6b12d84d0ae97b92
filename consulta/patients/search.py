import re

from django.db.models import Q, QuerySet

from consulta.patients.models import Patient

SORTS = {
    "name": ("last_name", "first_name", "pk"),
    "-name": ("-last_name", "-first_name", "-pk"),
    "national_id": ("national_id", "pk"),
    "doctor": ("doctor__user__last_name", "last_name", "pk"),
    "newest": ("-created_at", "-pk"),
}


def search_patients(qs: QuerySet[Patient], query: str) -> QuerySet[Patient]:
    """Every word must match a name, the national id, the email or (digits) the phone."""
    for term in query.split()[:5]:
        condition = (
            Q(last_name__icontains=term)
            | Q(first_name__icontains=term)
            | Q(national_id__icontains=term)
            | Q(email__icontains=term)
        )
        digits = re.sub(r"\D", "", term)
        if len(digits) >= 3:
            condition |= Q(phone__contains=digits)
        qs = qs.filter(condition)
    return qs


def sort_patients(qs: QuerySet[Patient], sort: str) -> QuerySet[Patient]:
    return qs.order_by(*SORTS.get(sort, SORTS["name"]))
