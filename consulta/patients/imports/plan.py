"""Checking every row of a file against the registry: what would be created, updated, left
alone, refused (and why) or archived. Nothing is written here."""

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consulta.lib.errors import DomainError
from consulta.patients.identifiers import (
    national_id_name,
    normalize_national_id,
    normalize_phone,
)
from consulta.patients.imports.formats import ImportFormat, normalize_header
from consulta.patients.models import Patient
from consulta.patients.services import require_past_date_of_birth, sign_in_owners

State = Patient.State
SAMPLE_SIZE = 20
FIELD_LABELS = {
    "email": gettext_lazy("Email"),
    "phone": gettext_lazy("Mobile phone"),
    "date_of_birth": gettext_lazy("Date of birth"),
    "state": gettext_lazy("State"),
}
PROGRESS_EVERY = 2000


class _EmailValidator(EmailValidator):
    """Django's email check, with its regular expressions compiled once here: Django keeps
    them as lazy objects, and going through the lazy proxy on every call was two thirds of
    the time an import spent checking emails (0.24 s of 0.34 s per 100,000 rows)."""

    user_regex = re.compile(EmailValidator.user_regex.pattern, EmailValidator.user_regex.flags)
    domain_regex = re.compile(
        EmailValidator.domain_regex.pattern, EmailValidator.domain_regex.flags
    )
    literal_regex = re.compile(
        EmailValidator.literal_regex.pattern, EmailValidator.literal_regex.flags
    )


validate_email = _EmailValidator()


@dataclass(slots=True)
class Candidate:
    line: int
    national_id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    state: str | None
    date_of_birth: date | None
    values: dict | None = None  # the row as read, for the error report


@dataclass(slots=True)
class Invalid:
    line: int
    values: dict
    reason: str


@dataclass
class Plan:
    # The new patients, in file order; empty for a preview and when they went straight to the
    # database as they were sorted (keep_new=False): new_count counts them either way.
    new: list[Candidate] = field(default_factory=list)
    new_count: int = 0
    updates: list[tuple[int, dict]] = field(default_factory=list)
    unchanged: int = 0
    invalid: list[Invalid] = field(default_factory=list)
    to_archive: list[int] = field(default_factory=list)
    # (user id, new email) of updated patients who sign in with their email address.
    sign_in_moves: list[tuple[int, str]] = field(default_factory=list)
    samples: dict = field(default_factory=lambda: {"new": [], "updated": [], "archived": []})

    def rows(self) -> int:
        """The rows of the file sorted into the plan (each counts once)."""
        return self.new_count + len(self.updates) + self.unchanged + len(self.invalid)

    def summary(self) -> dict:
        return {
            "new": self.new_count,
            "updated": len(self.updates),
            "unchanged": self.unchanged,
            "invalid": len(self.invalid),
            "archived": len(self.to_archive),
        }


def validate_row(country: str, fmt: ImportFormat, line: int, values: dict) -> Candidate | Invalid:
    """One row on its own: required names, a valid national id, phone, email, state, date.
    A row refused for one reason is checked again for all of them, so that the report names
    every problem of the row at once rather than one per attempt."""
    try:
        first_name, last_name = _names(values)
        national_id = _national_id(country, values)
        phone = normalize_phone(country, values.get("phone", ""))
        email = _email(values)
        state = _state(fmt, values)
        born = _date_of_birth(fmt, values)
    except DomainError:
        return Invalid(line, values, " ".join(_problems(country, fmt, values)))
    return Candidate(line, national_id, first_name, last_name, email, phone, state, born, values)


def _problems(country: str, fmt: ImportFormat, values: dict) -> list[str]:
    checks = (
        lambda: _names(values),
        lambda: _national_id(country, values),
        lambda: normalize_phone(country, values.get("phone", "")),
        lambda: _email(values),
        lambda: _state(fmt, values),
        lambda: _date_of_birth(fmt, values),
    )
    problems = []
    for check in checks:
        try:
            check()
        except DomainError as refusal:
            problems.append(str(refusal.message))
    return problems


def _names(values: dict) -> tuple[str, str]:
    first_name, last_name = values.get("first_name", ""), values.get("last_name", "")
    if not first_name or not last_name:
        raise DomainError(_("First name and last name are required."), code="required")
    return first_name, last_name


def _national_id(country: str, values: dict) -> str:
    national_id = normalize_national_id(country, values.get("national_id", ""))
    if not national_id:
        raise DomainError(
            _("The %(national_id)s is missing.") % {"national_id": national_id_name(country)},
            code="required",
        )
    return national_id


def _email(values: dict) -> str:
    email = values.get("email", "").lower()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise DomainError(
                _("%(value)s is not a valid email address.") % {"value": email},
                code="invalid_email",
            ) from None
    return email


def _state(fmt: ImportFormat, values: dict) -> str | None:
    if "state" not in fmt.columns:
        return None
    raw_state = values.get("state", "")
    state = fmt.state_codes.get(normalize_header(raw_state))
    if state is None:
        raise DomainError(
            _("Unknown registration type: %(value)s.") % {"value": raw_state},
            code="invalid_state",
        )
    return state


def _date_of_birth(fmt: ImportFormat, values: dict) -> date | None:
    born = _parse_date(values.get("date_of_birth", ""), fmt)
    require_past_date_of_birth(born)
    return born


def iter_checked(
    country: str,
    fmt: ImportFormat,
    rows: Iterable[tuple[int, dict]],
    progress: Callable[[int], None] | None = None,
) -> Iterator[Candidate | Invalid]:
    """validate_row() for every row, in order, one at a time, reporting progress (the rows
    done so far) every PROGRESS_EVERY rows and at the end."""
    index = 0
    for index, (line, values) in enumerate(rows, start=1):
        yield validate_row(country, fmt, line, values)
        if progress is not None and index % PROGRESS_EVERY == 0:
            progress(index)
    if progress is not None:
        progress(index)


def _parse_date(text: str, fmt: ImportFormat) -> date | None:
    if not text:
        return None
    for pattern in fmt.date_formats:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise DomainError(_("%(value)s is not a date.") % {"value": text}, code="invalid_date")


def make_plan(
    *,
    clinic_id: int,
    country: str,
    doctor_id: int,
    fmt: ImportFormat,
    archive_missing: bool,
    checked: Iterable[Candidate | Invalid],
    keep_new: bool = True,
) -> Plan:
    """Sort checked rows (from iter_checked(), checked as they come) against the registry as
    it is when the first one comes. keep_new=False: the new patients are only counted (a
    preview needs their number and a few examples, not 100,000 of them in memory)."""
    sorter = Sorter(
        clinic_id=clinic_id,
        country=country,
        doctor_id=doctor_id,
        fmt=fmt,
        archive_missing=archive_missing,
        keep_new=keep_new,
    )
    add = sorter.add
    for result in checked:
        add(result)
    return sorter.finish()


def registry_of(clinic_id: int) -> dict[str, tuple]:
    """The clinic's patients with a national identifier, by identifier: (pk, doctor_id, email,
    phone, state, archived_at, date_of_birth, first_name, last_name, user_id)."""
    return {
        row[0]: row[1:]
        for row in Patient.objects.filter(clinic_id=clinic_id)
        .exclude(national_id="")
        .values_list(
            "national_id",
            "pk",
            "doctor_id",
            "email",
            "phone",
            "state",
            "archived_at",
            "date_of_birth",
            "first_name",
            "last_name",
            "user_id",
        )
        .iterator(chunk_size=5000)
    }


class Sorter:
    """Sorts checked rows, one at a time and in file order, against the registry as it was
    when the Sorter was made: new, updated, unchanged or invalid (the first row with a
    national identifier counts, later ones are invalid); finish() adds the patients to
    archive. make_plan() feeds it every row; the apply on PostgreSQL feeds it each row as soon
    as it is checked and writes the new ones at once (keep_new=False: only counted)."""

    def __init__(
        self,
        *,
        clinic_id: int,
        country: str,
        doctor_id: int,
        fmt: ImportFormat,
        archive_missing: bool,
        keep_new: bool = True,
    ):
        self.plan = Plan()
        self.existing = registry_of(clinic_id)
        self.country = country
        self.doctor_id = doctor_id
        self.fmt = fmt
        self.archive_missing = archive_missing
        self.keep_new = keep_new
        self.first_line_of: dict[str, int] = {}
        # New sign-in addresses this file gives, and the line that gives each.
        self.sign_in_line_of: dict[str, int] = {}
        self.moves: list[_SignInMove] = []

    def add(self, result: Candidate | Invalid) -> bool:
        """Sort one checked row; True when it is a new patient."""
        plan = self.plan
        if isinstance(result, Invalid):
            plan.invalid.append(result)
            return False
        line, values, nid = result.line, result.values, result.national_id
        first_line_of = self.first_line_of
        if nid in first_line_of:
            plan.invalid.append(
                Invalid(
                    line,
                    values,
                    _("Same %(national_id)s as line %(line)d.")
                    % {"national_id": national_id_name(self.country), "line": first_line_of[nid]},
                )
            )
            return False
        first_line_of[nid] = line
        found = self.existing.get(nid)
        if found is None:
            plan.new_count += 1
            if self.keep_new:
                plan.new.append(result)
            if len(plan.samples["new"]) < SAMPLE_SIZE:
                _sample(
                    plan,
                    "new",
                    {
                        "line": line,
                        "name": f"{result.last_name} {result.first_name}",
                        "national_id": nid,
                    },
                )
            return True
        pk, owner, email, phone, state, archived_at, born, first, last, user_id = found
        new_email = result.email if result.email and result.email != email else None
        if owner != self.doctor_id:
            plan.invalid.append(
                Invalid(
                    line,
                    values,
                    _("This patient is already registered with another doctor of the clinic."),
                )
            )
        elif archived_at is not None:
            plan.invalid.append(
                Invalid(line, values, _("This patient is in the archive: restore them first."))
            )
        elif new_email and user_id is not None and new_email in self.sign_in_line_of:
            plan.invalid.append(
                Invalid(
                    line,
                    values,
                    _(
                        "Line %(line)d gives this email address to another patient who signs in "
                        "with it: one address cannot open two accounts."
                    )
                    % {"line": self.sign_in_line_of[new_email]},
                )
            )
        else:
            changes = {}
            if new_email:
                changes["email"] = new_email
            if result.phone and result.phone != phone:
                changes["phone"] = result.phone
            if result.date_of_birth and result.date_of_birth != born:
                changes["date_of_birth"] = result.date_of_birth
            if self.fmt.regional and result.state and result.state != state:
                changes["state"] = result.state
            if changes:
                plan.updates.append((pk, changes))
                if new_email and user_id is not None:  # they sign in with it: it moves too
                    self.sign_in_line_of[new_email] = line
                    self.moves.append(_SignInMove(line, values, pk, user_id, new_email))
                _sample(
                    plan,
                    "updated",
                    {
                        "line": line,
                        "name": f"{last} {first}",
                        "national_id": nid,
                        "fields": [str(FIELD_LABELS[f]) for f in sorted(changes)],
                    },
                )
            else:
                plan.unchanged += 1
        return False

    def finish(self) -> Plan:
        """The plan, with the patients to archive (regional files with archive_missing) and
        the sign-in addresses that move."""
        plan = self.plan
        if self.moves:
            self._refuse_taken_sign_in_addresses()
        if self.archive_missing and self.fmt.regional:
            listed = set(self.first_line_of)
            listed.update(_valid_ids_of_invalid_rows(self.country, plan.invalid))
            existing = self.existing
            for nid, row in existing.items():
                pk, owner, _e, _p, state, archived_at, _b, first, last, _u = row
                if (
                    owner == self.doctor_id
                    and archived_at is None
                    and state in Patient.ACTIVE_SSN_STATES
                    and nid not in listed
                ):
                    plan.to_archive.append(pk)
                    _sample(plan, "archived", {"name": f"{last} {first}", "national_id": nid})
        return plan

    def _refuse_taken_sign_in_addresses(self) -> None:
        """A new sign-in address that another account already has: its row is refused.
        Checked here, once for all the rows, and not as each row comes: on PostgreSQL the
        rows are sorted while the connection is busy with the COPY, where no query may run."""
        plan = self.plan
        owner_of = sign_in_owners([move.email for move in self.moves])
        refused = [m for m in self.moves if owner_of.get(m.email, m.user_id) != m.user_id]
        lines = {move.line for move in refused}
        if refused:
            # A patient has one row in the plan (the first line with their identifier).
            dropped = {move.patient_id for move in refused}
            plan.updates = [u for u in plan.updates if u[0] not in dropped]
            plan.samples["updated"] = [s for s in plan.samples["updated"] if s["line"] not in lines]
            plan.invalid.extend(
                Invalid(
                    move.line,
                    move.values,
                    _("This email address already belongs to another account."),
                )
                for move in refused
            )
            plan.invalid.sort(key=lambda row: row.line)
        plan.sign_in_moves = [(m.user_id, m.email) for m in self.moves if m.line not in lines]


@dataclass(slots=True)
class _SignInMove:
    line: int
    values: dict
    patient_id: int
    user_id: int
    email: str


def _valid_ids_of_invalid_rows(country: str, invalid: list[Invalid]) -> set[str]:
    """A patient listed on a row refused for another reason is still on the regional list."""
    ids = set()
    for row in invalid:
        try:
            ids.add(normalize_national_id(country, row.values.get("national_id", "")))
        except DomainError:
            continue
    return ids


def _sample(plan: Plan, kind: str, item: dict) -> None:
    if len(plan.samples[kind]) < SAMPLE_SIZE:
        plan.samples[kind].append(item)
