import hashlib

from consulta.lib.folding import ACCENTED, COMBINING, PLAIN, fold

# The table as migration 0008 of patients stored it in every database's search column.
FOLD_TABLE_OF_MIGRATION_0008 = "49ce84138eadc4f21ae3c93bb88124b29f13353086e56577a4a40f0f1ecfd639"


def test_the_table_is_the_one_the_search_columns_were_made_with():
    digest = hashlib.sha256(f"{ACCENTED}|{PLAIN}|{COMBINING}".encode()).hexdigest()
    assert digest == FOLD_TABLE_OF_MIGRATION_0008, (
        "The fold changed: add a migration that makes Patient.search_text again (as 0008 "
        "does), then pin the new table here."
    )


def test_each_accented_letter_has_one_plain_capital():
    assert len(ACCENTED) == len(PLAIN) == len(set(ACCENTED))
    assert not any(c.isascii() for c in ACCENTED)
    assert PLAIN.isascii() and PLAIN.isupper()
    assert not set("ÆØÅæøå") & set(ACCENTED)  # Norwegian letters of their own


def test_fold():
    assert fold("Niccolò Dell'Acqua") == "NICCOLO DELL'ACQUA"
    assert fold("Ștefan Dvořák, Łukasz") == "STEFAN DVORAK, LUKASZ"
    assert fold("He\u0301le\u0300ne") == "HELENE"  # written decomposed
    assert fold("Ørjan Åsen") == "ØRJAN ÅSEN"
    assert fold("+393331234567") == "+393331234567"
    assert fold(None) is None
