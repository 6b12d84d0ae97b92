import django.db.models.functions.text
from django.db import migrations, models

import consulta.lib.folding

# The search column keeps names and phone only, folded (upper case, no accents: "niccolo"
# finds "Niccolò"); the national id and the email are searched
# from their start through b-tree indexes (text_pattern_ops, so that LIKE 'ABC%' uses them
# whatever the database's collation). An import of 100,000 patients spent a third of the
# database's time putting the national ids' and emails' trigrams into the GIN index.
SEARCH_INDEX = "patients_patient_search_trgm"
EMAIL_INDEX = "patients_patient_clinic_email_prefix"


def _table(apps, schema_editor):
    return schema_editor.quote_name(apps.get_model("patients", "Patient")._meta.db_table)


def drop_search_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {SEARCH_INDEX}")


def create_search_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {SEARCH_INDEX} ON {_table(apps, schema_editor)} "
            "USING gin (search_text gin_trgm_ops)"
        )


def create_search_indexes(apps, schema_editor):
    create_search_index(apps, schema_editor)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {EMAIL_INDEX} ON {_table(apps, schema_editor)} "
            "(clinic_id, UPPER(email) text_pattern_ops)"
        )


def drop_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {EMAIL_INDEX}")
    drop_search_index(apps, schema_editor)


def _search_text(*fields):
    parts = []
    for field in fields:
        parts += [field, models.Value(" ")]
    return models.GeneratedField(
        db_persist=True,
        expression=consulta.lib.folding.Folded(
            django.db.models.functions.text.Concat(*parts[:-1], output_field=models.TextField())
        ),
        output_field=models.TextField(),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("patients", "0007_field_labels"),
    ]

    operations = [
        migrations.RunPython(drop_search_index, create_search_index, elidable=False),
        # A generated column's expression cannot be altered: the column is made again.
        migrations.RemoveField(model_name="patient", name="search_text"),
        migrations.AddField(
            model_name="patient",
            name="search_text",
            field=_search_text("last_name", "first_name", "phone"),
        ),
        migrations.RemoveConstraint(
            model_name="patient",
            name="patient_national_id_unique_per_clinic",
        ),
        migrations.AddConstraint(
            model_name="patient",
            constraint=models.UniqueConstraint(
                condition=models.Q(("national_id", ""), _negated=True),
                fields=("clinic", "national_id"),
                name="patient_national_id_unique_per_clinic",
                opclasses=["int8_ops", "text_pattern_ops"],
            ),
        ),
        migrations.RunPython(create_search_indexes, drop_search_indexes, elidable=False),
    ]
