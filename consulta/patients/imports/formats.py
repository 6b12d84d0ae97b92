"""The file formats Consulta imports. A regional system is one more entry in FORMATS:
its delimiter, encoding, column names and state codes (see docs/imports.md)."""

import re
import unicodedata
from dataclasses import dataclass, field

from consulta.patients.models import Patient

State = Patient.State


_LETTERS = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ß": "ss", "đ": "d", "ł": "l"})


def normalize_header(text: str) -> str:
    """'Codice Fiscale', 'codice_fiscale' and 'CODICE-FISCALE' all become 'codice fiscale'."""
    # Letters that have no decomposition of their own (fødselsnummer, cœur).
    text = str(text).lower().translate(_LETTERS)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


@dataclass(frozen=True)
class ImportFormat:
    key: str
    # field -> header names it is recognised by (compared after normalize_header)
    columns: dict[str, tuple[str, ...]]
    required: tuple[str, ...]
    delimiter: str | None = None  # None: guess it from the file
    encoding: str | None = None  # None: UTF-8 (with or without BOM), else cp1252
    state_codes: dict[str, str] = field(default_factory=dict)
    date_formats: tuple[str, ...] = ("%d/%m/%Y", "%Y-%m-%d", "%d.%m.%Y")
    regional: bool = False  # the file is the doctor's whole list: states, archive-missing


_NAMES = {
    "national_id": (
        "national id",
        "national identifier",
        "identificativo nazionale",
        "codice identificativo nazionale",
        "identifiant national",
        "nasjonalt id nummer",
        "codice fiscale",
        "cf",
        "c f",
        "cod fisc",
        "fiscal code",
        "tax code",
        "fodselsnummer",
        "personnummer",
        "d nummer",
        "nir",
        "numero de securite sociale",
        "numero de securite sociale nir",
        "n securite sociale",
        "securite sociale",
        "nhs number",
        "numero nhs",
        "nhs nummer",
        "pps number",
        "numero pps",
        "pps nummer",
        "pps",
    ),
    "first_name": (
        "first name",
        "firstname",
        "given name",
        "forename",
        "nome",
        "prenom",
        "fornavn",
    ),
    "last_name": (
        "last name",
        "lastname",
        "surname",
        "family name",
        "cognome",
        "nom",
        "nom de famille",
        "etternavn",
    ),
    "email": (
        "email",
        "e mail",
        "mail",
        "email address",
        "indirizzo email",
        "posta elettronica",
        "courriel",
        "adresse email",
        "adresse e mail",
        "e post",
        "epost",
    ),
    "date_of_birth": (
        "date of birth",
        "birth date",
        "birthdate",
        "dob",
        "data di nascita",
        "data nascita",
        "date de naissance",
        "fodselsdato",
    ),
    "phone": (
        "mobile",
        "mobile phone",
        "mobile number",
        "phone",
        "phone number",
        "cellulare",
        "numero di cellulare",
        "cell",
        "telefono",
        "portable",
        "telephone",
        "telephone portable",
        "mobil",
        "mobiltelefon",
        "mobilnummer",
        "telefon",
    ),
}

LIST = ImportFormat(
    key="list",
    columns=_NAMES,
    required=("national_id", "first_name", "last_name"),
)

# Lombardy's SISS "Bacheca" export of a doctor's assisted patients: semicolon-separated,
# Windows-1252, one row per patient with the kind of assistance (assisted or temporary).
SISS = ImportFormat(
    key="siss",
    columns={
        "national_id": ("codice fiscale", "cod fiscale", "codfisc", "cf"),
        "last_name": ("cognome",),
        "first_name": ("nome",),
        "date_of_birth": ("data nascita", "data di nascita", "dt nascita"),
        "phone": ("telefono", "cellulare", "recapito telefonico"),
        "email": ("email", "e mail", "indirizzo email"),
        "state": ("tipo assistenza", "tipologia assistenza", "tipo assistito", "stato"),
    },
    required=("national_id", "last_name", "first_name", "state"),
    delimiter=";",
    encoding="cp1252",
    state_codes={
        "a": State.SSN,
        "assistito": State.SSN,
        "ssn": State.SSN,
        "s": State.SSN,
        "t": State.SSN_TEMPORARY,
        "temporaneo": State.SSN_TEMPORARY,
        "assistito temporaneo": State.SSN_TEMPORARY,
        "ssn temporaneo": State.SSN_TEMPORARY,
    },
    regional=True,
)

FORMATS = {fmt.key: fmt for fmt in (LIST, SISS)}
