"""National identifiers and phone numbers (consulta/patients/identifiers.py)."""

import random

import phonenumbers
import pytest

from consulta.lib.errors import DomainError
from consulta.patients.identifiers import _found_by_validation, is_valid_number, normalize_phone

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
