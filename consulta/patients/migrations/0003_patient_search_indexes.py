# Written by hand: the indexes below are expression, operator-class and partial indexes that
# serve the registry's search and list queries (consulta/patients/search.py). They are not in
# the model's Meta, so the model state is unchanged and makemigrations never sees them.

from django.db import migrations

# Django compiles `icontains` on PostgreSQL to `UPPER("col"::text) LIKE UPPER(%s)` and
# `contains` to `"col"::text LIKE %s`: a GIN trigram index on exactly those expressions
# answers `LIKE '%term%'` for terms of three characters or more.
TRIGRAM_INDEXES = {
    "patients_patient_last_name_trgm": "UPPER(last_name) gin_trgm_ops",
    "patients_patient_first_name_trgm": "UPPER(first_name) gin_trgm_ops",
    "patients_patient_national_id_trgm": "UPPER(national_id) gin_trgm_ops",
    "patients_patient_email_trgm": "UPPER(email) gin_trgm_ops",
    "patients_patient_phone_trgm": "phone gin_trgm_ops",
}

# The lists by tab ("My patients": one doctor's active patients, in name order, counted).
# First page: read in index order, whatever the size of the clinic. COUNT(*): an index-only
# scan of a small index whose keys are exactly the tab's filters (b-tree deduplication keeps it
# under 1 MB for 100,000 patients). Both partial: archived patients are in neither.
LIST_INDEXES = {
    "patients_patient_doctor_active_name": "(doctor_id, last_name, first_name, id)",
    "patients_patient_doctor_active_state": "(doctor_id, state, clinic_id)",
}


def create_indexes(apps, schema_editor):
    table = schema_editor.quote_name(apps.get_model("patients", "Patient")._meta.db_table)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, expression in TRIGRAM_INDEXES.items():
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({expression})"
            )
    for name, columns in LIST_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} {columns} WHERE archived_at IS NULL"
        )


def drop_indexes(apps, schema_editor):
    names = list(LIST_INDEXES)
    if schema_editor.connection.vendor == "postgresql":
        names += list(TRIGRAM_INDEXES)
    for name in names:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
    # pg_trgm stays: other objects may use it, and keeping it is harmless.


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0002_patient_archive_note_patient_archive_reason_and_more"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
