# Written by hand: an exclusion constraint is PostgreSQL's, so it is created only there. On
# SQLite (the embedded default) writers are serialised and the booking service's own check,
# inside the same transaction, is enough.

from django.db import migrations

CONSTRAINT = "booking_hold_no_overlap"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("scheduling", "BookingHold")._meta.db_table)
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    schema_editor.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT {CONSTRAINT} EXCLUDE USING gist "
        "(clinician_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) WHERE (active)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("scheduling", "BookingHold")._meta.db_table)
    schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {CONSTRAINT}")


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0001_initial")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
