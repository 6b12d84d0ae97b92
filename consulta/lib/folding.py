"""Text folded for searching: upper case, without the accents of Latin letters, so that
"niccolo" finds "Niccolò", "helene" finds "Hélène", "muller" finds "Müller" and "stefan"
finds "Ștefan". The database folds both the stored column and the searched word, the same
way.

ACCENTED holds the letters of Latin-1 and Latin Extended-A whose canonical decomposition is
an ASCII letter and accents, the Romanian Ș and Ț, and Ł, Đ, Ħ, Ŧ and ı; PLAIN their ASCII
capitals. Combining accents (text written decomposed, as macOS may write a file) are
removed. Æ, Ø and Å stay as they are: they are letters of their own in Norwegian, typed as
such, not accented vowels.

Changing the table changes what the searched words become, but not the search column that
the databases already hold: it needs a migration that makes `Patient.search_text` again
(tests/test_folding.py pins the table to say so)."""

from django.db.models import Func, TextField

ACCENTED = (
    "ÀÁÂÃÄÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģ"
    "ĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžȘșȚțŁłĐđĦħŦŧı"
)
PLAIN = (
    "AAAAACEEEEIIIINOOOOOUUUUYAAAAACEEEEIIIINOOOOOUUUUYYAAAAAACCCCCCCCDDEEEEEEEEEEGGGGGGGG"
    "HHIIIIIIIIIJJKKLLLLLLNNNNNNOOOOOORRRRRRSSSSSSSSTTTTUUUUUUUUUUUUWWYYYZZZZZZSSTTLLDDHHTTI"
)
COMBINING = "".join(chr(code) for code in range(0x0300, 0x0370))  # dropped by the fold
_TABLE = str.maketrans(ACCENTED, PLAIN, COMBINING)
SQLITE_FUNCTION = "consulta_fold"
# TRANSLATE removes the characters of its second argument that the third lacks.
_TRANSLATE = "TRANSLATE(UPPER({}), '" + ACCENTED + COMBINING + "', '" + PLAIN + "')"


def fold(text: str | None) -> str | None:
    """What Folded computes, in Python: SQLite's, which has no TRANSLATE (and whose UPPER
    knows ASCII letters only)."""
    return None if text is None else text.translate(_TABLE).upper()


class Folded(Func):
    """UPPER(text) with the accents of ACCENTED removed; immutable, as a generated column
    needs. PostgreSQL: TRANSLATE (both cases are listed, whatever the database's locale
    does with UPPER). SQLite: fold(), registered on every connection (see LibConfig)."""

    output_field = TextField()
    template = _TRANSLATE.format("%(expressions)s")

    def as_postgresql(self, compiler, connection, **extra_context):
        # TRANSLATE compares every character with every accented letter: half a second of
        # the server's time for an import of 100,000 patients. Text whose bytes are its
        # characters is ASCII, with nothing to translate: UPPER alone.
        sql, params = compiler.compile(self.get_source_expressions()[0])
        return (
            f"(CASE WHEN OCTET_LENGTH({sql}) = CHAR_LENGTH({sql}) THEN UPPER({sql}) "
            f"ELSE {_TRANSLATE.format(sql)} END)",
            (*params, *params, *params, *params),
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler, connection, template=f"{SQLITE_FUNCTION}(%(expressions)s)", **extra_context
        )


def register_sqlite_fold(sender, connection, **kwargs) -> None:
    """connection_created: SQLite learns fold() (deterministic: usable in a generated column
    and an index)."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(SQLITE_FUNCTION, 1, fold, deterministic=True)
