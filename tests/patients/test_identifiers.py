"""National identifiers and phone numbers (consulta/patients/identifiers.py)."""

import random

import phonenumbers
import pytest
from django.utils import translation

from consulta.lib.errors import DomainError
from consulta.patients.export import export_header
from consulta.patients.identifiers import (
    _found_by_validation,
    is_valid_number,
    national_id_label,
    normalize_phone,
)
from consulta.patients.imports.formats import LIST
from consulta.patients.imports.reader import _map_header

COUNTRIES = ["IT", "FR", "NO", "GB", "IE"]


def numbers_to_try(country: str, count: int, rng: random.Random):
    """Numbers as people type them: national ones of every length and first digit (valid or
    not), and international ones of the calling codes that share a region list."""
    for _ in range(count):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(5, 12)))
        yield digits
        yield "+" + rng.choice(["39", "33", "47", "44", "353", "379"]) + digits
    # Numbers of the smaller regions that share a calling code with the clinic's country.
    yield from [
        "+39 06 698 12345",
        "+39 06698 1",
        "+47 79 12 34 56",
        "+44 1481 123456",
        "+44 7700 900123",
        "+44 1624 123456",
        "+44 1534 123456",
        "+39 0549 123456",
    ]


@pytest.mark.parametrize("country", COUNTRIES)
def test_the_quicker_check_agrees_with_phonenumbers(country):
    rng = random.Random(f"phones-{country}")
    checked = valid = 0
    for text in numbers_to_try(country, 4000, rng):
        try:
            number = phonenumbers.parse(text, country)
        except phonenumbers.NumberParseException:
            continue
        expected = phonenumbers.is_valid_number(number)
        assert is_valid_number(number, country) == expected, text
        checked += 1
        valid += expected
    assert checked > 4000 and valid > 50  # both answers were exercised


def test_only_regions_found_by_validation_take_the_quicker_check():
    assert _found_by_validation("IT") and _found_by_validation("GB") and _found_by_validation("FR")
    assert not _found_by_validation("NO")  # told from Svalbard by leading digits
    assert not _found_by_validation("VA")  # not the first region of +39


def test_phones_are_stored_in_e164_and_bad_ones_refused():
    assert normalize_phone("IT", "333 123 4567") == "+393331234567"
    assert normalize_phone("IT", "+39 06 698 12345") == "+390669812345"  # the Vatican
    with pytest.raises(DomainError) as refusal:
        normalize_phone("IT", "12")
    assert refusal.value.code == "invalid_phone"


@pytest.mark.parametrize(
    ("country", "language", "label"),
    [
        # The clinic's country names it, whatever the language of the page.
        ("IT", "en", "Codice fiscale"),
        ("IT", "fr", "Codice fiscale"),
        ("IT", "nb", "Codice fiscale"),
        ("NO", "it", "Fødselsnummer"),
        ("FR", "en", "NIR"),
        ("FR", "fr", "Numéro de sécurité sociale (NIR)"),
        ("GB", "nb", "NHS-nummer"),
        ("IE", "it", "Numero PPS"),
        # A country with no scheme of its own, or no clinic (a platform operator).
        ("DE", "en", "National identifier"),
        ("DE", "fr", "Identifiant national"),
        (None, "nb", "Nasjonalt ID-nummer"),
    ],
)
def test_the_national_identifier_is_named_by_the_clinics_country(country, language, label):
    with translation.override(language):
        assert national_id_label(country) == label


@pytest.mark.parametrize("language", ["en", "it", "fr", "nb"])
@pytest.mark.parametrize("country", ["IT", "NO", "FR", "GB", "IE", "DE"])
def test_the_import_reads_the_exports_national_identifier_column(country, language):
    with translation.override(language):
        header = export_header(country)
    assert "national_id" in _map_header(header, LIST).values()


@pytest.mark.parametrize("language", ["en", "it", "fr", "nb"])
def test_an_exported_file_imports_again_with_every_column_the_import_knows(language):
    """Export, edit in Excel, import: names, identifier, date of birth, email and phone are
    all read back, in every language the export is written in."""
    with translation.override(language):
        header = export_header("IT")
    assert sorted(_map_header(header, LIST).values()) == [
        "date_of_birth",
        "email",
        "first_name",
        "last_name",
        "national_id",
        "phone",
    ]
