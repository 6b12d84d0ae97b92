"""National identifiers and phone numbers, checked and normalised by the clinic's country."""

import re
from functools import cache

import phonenumbers
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from phonenumbers import PhoneMetadata
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fr import nir
from stdnum.gb import nhs
from stdnum.ie import pps
from stdnum.it import codicefiscale
from stdnum.no import fodselsnummer

from consulta.lib.errors import DomainError

# country -> (python-stdnum module, the name people use for it). The names are translatable
# for the languages in which people say them differently (the NIR is a "numéro de sécurité
# sociale" in French); most are proper names, the same in every language.
_SCHEMES = {
    "IT": (codicefiscale, gettext_lazy("codice fiscale")),
    "NO": (fodselsnummer, gettext_lazy("fødselsnummer")),
    "FR": (nir, gettext_lazy("NIR")),
    "GB": (nhs, gettext_lazy("NHS number")),
    "IE": (pps, gettext_lazy("PPS number")),
}


def national_id_name(country: str | None) -> str:
    """What the clinic's country calls the national identifier, as in a sentence ("codice
    fiscale"); "national identifier" for a country with no scheme of its own (or no clinic)."""
    return str(_SCHEMES[country][1]) if country in _SCHEMES else _("national identifier")


def national_id_label(country: str | None) -> str:
    """The same name as a label or a column heading ("Codice fiscale")."""
    return capfirst(national_id_name(country))


def normalize_national_id(country: str, raw: str) -> str:
    """The compact, validated form of `raw` ("" stays ""), or a DomainError that says why.
    Italian codici fiscali with omocodia substitutions are valid as they are."""
    value = (raw or "").strip()
    if not value:
        return ""
    module, name = _SCHEMES.get(country, (None, None))
    if module is None:
        return value.upper()
    try:
        return module.validate(value)
    except StdnumError:
        raise DomainError(
            _("%(value)s is not a valid %(name)s.") % {"value": value, "name": name},
            code="invalid_national_id",
        ) from None


def normalize_phone(country: str, raw: str) -> str:
    """E.164 (+39333…) of a mobile number, reading numbers without a country code as the
    clinic's country's. The registry keeps the patient's mobile, to which invitations and
    reminders are texted: a landline (or a toll-free, premium-rate or VoIP number) is
    refused, where the numbering plan tells it from a mobile (in the United States it
    doesn't, and any valid number is taken)."""
    value = (raw or "").strip()
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, country)
    except phonenumbers.NumberParseException:
        number = None
    region = None if number is None else valid_number_region(number, country)
    if region is None:
        raise DomainError(
            _("%(value)s is not a valid phone number.") % {"value": value}, code="invalid_phone"
        )
    mobile = _mobile_pattern(region)
    if mobile is not None and not mobile.fullmatch(
        phonenumbers.national_significant_number(number)
    ):
        raise DomainError(
            _("%(value)s is not a mobile phone number: enter the patient's mobile, or nothing.")
            % {"value": value},
            code="not_mobile",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def valid_number_region(number: phonenumbers.PhoneNumber, country: str) -> str | None:
    """The region of a valid number, or None: phonenumbers.is_valid_number() and
    region_code_for_number(), in half the time for the clinic's own numbers (an import
    checks 100,000 of them). Those functions first find the number's region and then check
    the number against it; for the main region of a calling code that is told from the
    others by a full check (Italy, not the Vatican; the UK, not Jersey), finding the region
    *is* that check, done twice. So: valid for the clinic's country, when it is such a
    region, means valid there; anything else takes the full check."""
    if _found_by_validation(country) and phonenumbers.is_valid_number_for_region(number, country):
        return country
    if phonenumbers.is_valid_number(number):
        return phonenumbers.region_code_for_number(number)
    return None


@cache
def _mobile_pattern(region: str) -> re.Pattern | None:
    """The numbering plan's mobile numbers of a region (national significant numbers)."""
    metadata = PhoneMetadata.metadata_for_region(region, None)
    pattern = metadata and metadata.mobile and metadata.mobile.national_number_pattern
    return re.compile(pattern) if pattern else None


@cache
def _found_by_validation(country: str) -> bool:
    """phonenumbers.region_code_for_number() returns `country` for every number valid there:
    it is the first region of its calling code and has no leading digits of its own."""
    code = phonenumbers.country_code_for_region(country)
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, ())
    metadata = PhoneMetadata.metadata_for_region(country, None)
    return bool(regions) and regions[0] == country and metadata.leading_digits is None
