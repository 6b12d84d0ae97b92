from django.conf import settings

from consulta.patients.identifiers import national_id_label, national_id_name


def consulta(request):
    clinic = getattr(request, "clinic", None)
    country = clinic.country if clinic else None
    return {
        # What the clinic's country calls the national identifier (labels, sentences).
        "national_id_label": national_id_label(country),
        "national_id_name": national_id_name(country),
        "staff": getattr(request, "staff", None),
        "current_patient": getattr(request, "patient", None),
        "current_clinic": clinic,
        "languages": settings.LANGUAGES,
    }
