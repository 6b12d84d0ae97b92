"""National identifiers and phone numbers (consulta/patients/identifiers.py)."""

import random

import phonenumbers
import pytest
from django.utils import translation

from consulta.lib.errors import DomainError
from consulta.patients.export import export_header
from consulta.patients.identifiers import (
    _found_by_validation,
    national_id_label,
    normalize_phone,
    valid_number_region,
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
        region = phonenumbers.region_code_for_number(number) if expected else None
        assert valid_number_region(number, country) == region, text
        checked += 1
        valid += expected
    assert checked > 4000 and valid > 50  # both answers were exercised


MOBILE_TYPES = (
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
)


@pytest.mark.parametrize("country", [*COUNTRIES, "US"])
def test_mobiles_are_taken_and_landlines_refused_as_phonenumbers_tells_them(country):
    rng = random.Random(f"mobiles-{country}")
    kinds = {"mobile": 0, "landline": 0}
    for text in numbers_to_try(country, 4000, rng):
        try:
            number = phonenumbers.parse(text, country)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number(number):
            continue
        kind = phonenumbers.number_type(number)
        if kind in MOBILE_TYPES:
            assert normalize_phone(country, text).startswith("+"), text
            kinds["mobile"] += 1
        elif kind == phonenumbers.PhoneNumberType.FIXED_LINE:
            with pytest.raises(DomainError) as refusal:
                normalize_phone(country, text)
            assert refusal.value.code == "not_mobile", text
            kinds["landline"] += 1
    assert kinds["mobile"] > 20 and (kinds["landline"] > 20 or country == "US"), kinds


def test_only_regions_found_by_validation_take_the_quicker_check():
    assert _found_by_validation("IT") and _found_by_validation("GB") and _found_by_validation("FR")
    assert not _found_by_validation("NO")  # told from Svalbard by leading digits
    assert not _found_by_validation("VA")  # not the first region of +39


def test_phones_are_stored_in_e164_and_bad_ones_refused():
    assert normalize_phone("IT", "333 123 4567") == "+393331234567"
    assert normalize_phone("IT", "+33 6 12 34 56 78") == "+33612345678"  # a French mobile
    assert normalize_phone("NO", "412 34 567") == "+4741234567"
    assert normalize_phone("US", "(201) 555-0123") == "+12015550123"  # can't tell: taken
    with pytest.raises(DomainError) as refusal:
        normalize_phone("IT", "12")
    assert refusal.value.code == "invalid_phone"


@pytest.mark.parametrize(
    ("country", "text"),
    [
        ("IT", "06 1234 5678"),  # Rome
        ("IT", "+39 06 698 12345"),  # the Vatican
        ("IT", "800 123 456"),  # toll-free
        ("FR", "01 42 34 56 78"),
        ("NO", "22 12 34 56"),
        ("GB", "020 7123 4567"),
    ],
)
def test_a_number_that_is_not_a_mobile_is_refused_with_a_translated_reason(country, text):
    """Invitations and reminders are texted to the registry's mobile phone."""
    with pytest.raises(DomainError) as refusal:
        normalize_phone(country, text)
    assert refusal.value.code == "not_mobile"
    assert str(refusal.value.message) == (
        f"{text} is not a mobile phone number: enter the patient's mobile, or nothing."
    )
    with translation.override("it"), pytest.raises(DomainError) as refusal:
        normalize_phone(country, text)
    assert str(refusal.value.message).startswith(f"{text} non è un numero di cellulare")


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
