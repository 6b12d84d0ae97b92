"""National identifiers and phone numbers, checked and normalised by the clinic's country."""

import phonenumbers
from django.utils.translation import gettext as _
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fr import nir
from stdnum.gb import nhs
from stdnum.ie import pps
from stdnum.it import codicefiscale
from stdnum.no import fodselsnummer

from consulta.lib.errors import DomainError

# country -> (python-stdnum module, the name people use for it)
_SCHEMES = {
    "IT": (codicefiscale, "codice fiscale"),
    "NO": (fodselsnummer, "fødselsnummer"),
    "FR": (nir, "NIR"),
    "GB": (nhs, "NHS number"),
    "IE": (pps, "PPS number"),
}


def national_id_name(country: str) -> str:
    return _SCHEMES[country][1] if country in _SCHEMES else _("national identifier")


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
    """E.164 (+39333…), reading numbers without a country code as the clinic's country's."""
    value = (raw or "").strip()
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, country)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise DomainError(
            _("%(value)s is not a valid phone number.") % {"value": value}, code="invalid_phone"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
