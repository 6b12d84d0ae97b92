from django.conf import settings


def consulta(request):
    return {
        "staff": getattr(request, "staff", None),
        "current_patient": getattr(request, "patient", None),
        "current_clinic": getattr(request, "clinic", None),
        "languages": settings.LANGUAGES,
    }
