from django.urls import path

from consulta.patients import views
from consulta.patients.imports import views as imports

urlpatterns = [
    path("patients/", views.patient_list, name="patient_list"),
    path("patients/new/", views.patient_create, name="patient_create"),
    path("patients/export/", views.patient_export, name="patient_export"),
    path("patients/import/", imports.import_start, name="patient_import_start"),
    path("patients/import/<uuid:pk>/", imports.import_detail, name="patient_import"),
    path("patients/import/<uuid:pk>/status/", imports.import_status, name="patient_import_status"),
    path(
        "patients/import/<uuid:pk>/errors.csv", imports.import_errors, name="patient_import_errors"
    ),
    path(
        "patients/import/<uuid:pk>/confirm/", imports.import_confirm, name="patient_import_confirm"
    ),
    path("patients/import/<uuid:pk>/cancel/", imports.import_cancel, name="patient_import_cancel"),
    path("patients/list/<str:tab>/", views.patient_list, name="patient_list_tab"),
    path("patients/<int:pk>/", views.patient_detail, name="patient_detail"),
    path("patients/<int:pk>/state/", views.patient_change_state, name="patient_change_state"),
    path("patients/<int:pk>/archive/", views.patient_archive, name="patient_archive"),
    path(
        "patients/<int:pk>/contacts/", views.patient_update_contacts, name="patient_update_contacts"
    ),
    path("patients/<int:pk>/restore/", views.patient_restore, name="patient_restore"),
    path("patients/<int:pk>/delete/", views.patient_delete, name="patient_delete"),
    path("patients/<int:pk>/invite/", views.patient_invite, name="patient_invite"),
    path("patients/<int:pk>/blocks/", views.patient_blocks, name="patient_blocks"),
    path("patients/<int:pk>/correct/", views.patient_correct, name="patient_correct"),
]
