"""Search in a large registry: p95 of "as you type" searches through the real list view, by
name prefix and by full national id, for a doctor with N patients, against a real deployment
(PostgreSQL + Redis, one process, CONSULTA_ENV=demo).

    uv run python bench/patients_search.py [--rows N] [--requests N] [--json-out PATH]

Progress goes to stderr; the last line on stdout is one JSON object (see bench/README.md).
The helpers here (seeding patients straight into the bench database, a small HTTP client with
cookies, signing in with a link) are shared with bench/patients_export.py.
"""

import argparse
import http.client
import random
import re
import sys
import time
import unicodedata
from datetime import UTC, date, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from stdnum.it.codicefiscale import calc_check_digit  # noqa: E402

from bench.common import emit, log, percentile, rounded  # noqa: E402
from tests.browser.server import running_deployment, server_logs  # noqa: E402
from tests.services import POSTGRES_URL, REDIS_URL  # noqa: E402

DEMO_DOCTOR_EMAIL = "anna.rossi@demo.consulta.test"
SEED = 20260501
WARMUP = 20


def _names(text: str) -> list[str]:
    return text.split()


# Common Italian surnames and first names (a few with an apostrophe, a space or an accent).
SURNAMES = _names("""Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno
Gallo Conti De_Luca Mancini Costa Giordano Rizzo Lombardi Moretti Barbieri Fontana Santoro
Mariani Rinaldi Caruso Ferrara Galli Martini Leone Longo Gentile Martinelli Vitale Lombardo
Serra Coppola De_Santis D'Angelo Marchetti Parisi Villa Conte Ferraro Ferri Fabbri Bianco
Marini Grasso Valentini Messina Sala De_Angelis Gatti Pellegrini Palumbo Sanna Farina Rizzi
Monti Cattaneo Morelli Amato Silvestri Mazza Testa Grassi Pellegrino Carbone Giuliani Benedetti
Barone Rossetti Caputo Montanari Guerra Palmieri Bernardi Martino Fiore De_Rosa Ferretti
Bellini Basile Riva Donati Piras Vitali Battaglia Sartori Neri Costantini Milani Pagano Ruggiero
Sorrentino D'Amico Orlando Damico Negri Fumagalli Bassi Cirillo Cocco Brambilla Lazzari Fabbro
Nicoletti Mele Gentili Marras Zanetti Mantovani Tosi Melis Ruggeri Cristiani Bonetti Pace
Bertolini Mancuso Cappelli Fiorentino Pastore Lupo Zanella Sanfilippo Gori Poggi Musso Carli
Santini Guidi Rota Bassani Cavallo Valenti Lucchesi Fadda Morelli Carta Sala Pozzi Bonomi
Nicolò Mazzoleni Fabiani Ferrante Riccardi Tedesco Gallina Galli Rossini Marchi""")
FIRST_NAMES_F = _names("""Maria Anna Giulia Francesca Sara Laura Valentina Chiara Alessandra Elena
Federica Silvia Martina Paola Roberta Giovanna Elisa Simona Monica Barbara Cristina Rosa
Angela Giuseppina Teresa Lucia Carla Antonella Daniela Stefania Alice Sofia Aurora Ginevra
Beatrice Emma Greta Noemi Ilaria Serena Marta Caterina Rita Franca Luisa Nicoletta""")
FIRST_NAMES_M = _names("""Giuseppe Giovanni Antonio Mario Luigi Francesco Angelo Vincenzo Pietro
Salvatore Carlo Franco Domenico Bruno Paolo Michele Giorgio Aldo Sergio Luciano Marco Andrea
Luca Alessandro Matteo Lorenzo Davide Simone Stefano Roberto Massimo Fabio Riccardo Nicola
Gabriele Emanuele Federico Tommaso Leonardo Filippo Niccolò Mattia Enrico Claudio Alberto
Daniele Raffaele Gianluca Cristian""")
MUNICIPALITIES = _names("""F205 H501 F839 L219 G273 D612 A944 C351 L736 A662 F158 H703 B157 L424
E506 G224 I754 F704 D969 C933 A794 B354 H224 G478 F257 L781 E801 B963 C129 D643""")
MONTHS = "ABCDEHLMPRST"
DOMAINS = ["example.it", "posta.example.it", "mail.example.com", "esempio.it"]
# Spread of states over the seeded patients: (state, archive reason, share).
STATES = [
    ("SSN", "", 0.88),
    ("SSN_TEMPORARY", "", 0.05),
    ("PRIVATE", "", 0.03),
    ("SSN_DECEASED", "SSN_DECEASED", 0.02),
    ("SSN_REVOKED", "SSN_REVOKED", 0.02),
]
ACTIVE_STATES = ("SSN", "SSN_TEMPORARY")  # the "My patients" tab


# --- Seeding (setup, not measured) --------------------------------------------------------


def _letters(text: str) -> str:
    """Upper-case ASCII letters only: what a codice fiscale is computed from."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Z]", "", plain.upper())


def _split(text: str) -> tuple[str, str]:
    letters = _letters(text)
    consonants = "".join(c for c in letters if c not in "AEIOU")
    vowels = "".join(c for c in letters if c in "AEIOU")
    return consonants, vowels


def _surname_code(surname: str) -> str:
    consonants, vowels = _split(surname)
    return (consonants + vowels + "XXX")[:3]


def _name_code(name: str) -> str:
    consonants, vowels = _split(name)
    if len(consonants) >= 4:
        return consonants[0] + consonants[2] + consonants[3]
    return (consonants + vowels + "XXX")[:3]


def codice_fiscale(surname: str, name: str, born: date, female: bool, place: str) -> str:
    day = born.day + (40 if female else 0)
    body = (
        f"{_surname_code(surname)}{_name_code(name)}{born.year % 100:02d}"
        f"{MONTHS[born.month - 1]}{day:02d}{place}"
    )
    return body + calc_check_digit(body)


def _email_part(text: str) -> str:
    return _letters(text).lower()


def generate_patients(rows: int, rng: random.Random) -> list[dict]:
    """`rows` realistic patients with unique, valid codici fiscali and unique phones."""
    surnames = [s.replace("_", " ") for s in SURNAMES]
    national_ids: set[str] = set()
    phones: set[str] = set()
    start = date(1930, 1, 1).toordinal()
    end = date(2024, 12, 31).toordinal()
    states = [s for s, _, _ in STATES]
    weights = [w for _, _, w in STATES]
    reasons = {s: r for s, r, _ in STATES}
    patients = []
    while len(patients) < rows:
        female = rng.random() < 0.52
        first = rng.choice(FIRST_NAMES_F if female else FIRST_NAMES_M)
        last = rng.choice(surnames)
        born = date.fromordinal(rng.randint(start, end))
        national_id = codice_fiscale(last, first, born, female, rng.choice(MUNICIPALITIES))
        if national_id in national_ids:
            continue
        national_ids.add(national_id)
        phone = ""
        if rng.random() < 0.9:
            while not phone or phone in phones:
                phone = f"+393{rng.randint(10**8, 10**9 - 1)}"
            phones.add(phone)
        email = ""
        if rng.random() < 0.85:
            email = (
                f"{_email_part(first)}.{_email_part(last)}{rng.randint(1, 999)}"
                f"@{rng.choice(DOMAINS)}"
            )
        state = rng.choices(states, weights)[0]
        patients.append(
            {
                "first_name": first,
                "last_name": last,
                "national_id": national_id,
                "date_of_birth": born,
                "email": email,
                "phone": phone,
                "state": state,
                "archive_reason": reasons[state],
            }
        )
    return patients


def demo_doctor(database_url: str) -> tuple[int, int]:
    """(clinic id, staff member id) of the demo doctor, Anna Rossi."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT s.clinic_id, s.id FROM accounts_staffmember s "
            "JOIN accounts_user u ON u.id = s.user_id WHERE u.email = %s",
            [DEMO_DOCTOR_EMAIL],
        ).fetchone()
    if row is None:
        raise RuntimeError(f"no staff member {DEMO_DOCTOR_EMAIL}: was the demo seeded?")
    return row


def insert_patients(database_url: str, clinic_id: int, doctor_id: int, patients: list[dict]):
    """COPY the patients into the table for the demo doctor, then VACUUM ANALYZE (a settled
    table, as autovacuum leaves it in production)."""
    now = datetime.now(UTC)
    columns = (
        "clinic_id, doctor_id, user_id, first_name, last_name, national_id, date_of_birth, "
        "email, phone, state, archived_at, archive_reason, archive_note, invited_at, "
        "created_at, updated_at"
    )
    with (
        psycopg.connect(database_url) as conn,
        conn.cursor() as cursor,
        cursor.copy(f"COPY patients_patient ({columns}) FROM STDIN") as copy,
    ):
        for i, p in enumerate(patients):
            archived = now - timedelta(days=i % 700) if p["archive_reason"] else None
            copy.write_row(
                (
                    clinic_id,
                    doctor_id,
                    None,
                    p["first_name"],
                    p["last_name"],
                    p["national_id"],
                    p["date_of_birth"],
                    p["email"],
                    p["phone"],
                    p["state"],
                    archived,
                    p["archive_reason"],
                    "",
                    None,
                    now,
                    now,
                )
            )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE patients_patient")


def seed_registry(deployment, rows: int, rng: random.Random) -> tuple[dict, list[dict]]:
    """The demo clinic (sign-in links) plus `rows` patients for the demo doctor."""
    seed = deployment.seed_visits(1)
    database_url = deployment.env["DATABASE_URL"]
    clinic_id, doctor_id = demo_doctor(database_url)
    t0 = time.perf_counter()
    patients = generate_patients(rows, rng)
    insert_patients(database_url, clinic_id, doctor_id, patients)
    log(f"seeded {rows} patients for the demo doctor in {time.perf_counter() - t0:.1f} s")
    return seed, patients


# --- HTTP ----------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection with a cookie jar; no redirects followed."""

    def __init__(self, base_url: str):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.cookies: dict[str, str] = {}
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def open(self, method: str, path: str, body: bytes | None = None, headers=None):
        """Send a request; return the response, its body not read yet."""
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                break
            except (ConnectionError, http.client.HTTPException):
                self.close()  # the server closed an idle keep-alive connection: once more
                if attempt == 2:
                    raise
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response

    def request(self, method: str, path: str, body: bytes | None = None, headers=None):
        response = self.open(method, path, body, headers)
        return response.status, response.headers, response.read()

    def get(self, path: str, headers=None):
        return self.request("GET", path, headers=headers)


def sign_in(client: Client, link: str) -> None:
    """Open a printed one-time sign-in link and press Continue, as the page's form does."""
    path = urlsplit(link).path
    status, _, body = client.get(path)
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    if status != 200 or match is None:
        raise RuntimeError(f"sign-in page {path}: HTTP {status}, no CSRF token")
    form = urlencode({"csrfmiddlewaretoken": match.group(1).decode()}).encode()
    status, headers, _ = client.request(
        "POST",
        path,
        body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Referer": link},
    )
    if status not in (302, 303) or "sessionid" not in client.cookies:
        raise RuntimeError(f"sign-in POST {path}: HTTP {status}, no session")


# --- The benchmark -------------------------------------------------------------------------


def typed_prefix(surname: str, letters: int) -> str:
    """The surname as typed until `letters` letters of its last word: "Ros" for Rossi,
    "De Luc" for De Luca, "D'Ang" for D'Angelo."""
    start = max(surname.rfind(" "), surname.rfind("'")) + 1
    return surname[: start + letters]


def search_terms(patients: list[dict], count: int, rng: random.Random) -> list[tuple[str, str]]:
    """`count` name prefixes (3 to 5 letters, as typed) and `count` full national ids of
    patients on the "My patients" tab, interleaved."""
    active = [p for p in patients if p["state"] in ACTIVE_STATES]
    terms = []
    for _ in range(count):
        prefix = typed_prefix(rng.choice(active)["last_name"], rng.randint(3, 5))
        terms.append(("name", prefix.lower() if rng.random() < 0.5 else prefix))
        terms.append(("national_id", rng.choice(active)["national_id"]))
    return terms


def timed_search(client: Client, kind: str, term: str) -> float:
    path = "/patients/list/mine/?" + urlencode({"q": term})
    t0 = time.perf_counter()
    status, _, body = client.get(path, headers={"X-Requested-With": "fetch"})
    elapsed = (time.perf_counter() - t0) * 1000
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status}")
    if b'class="patients"' not in body or (kind == "national_id" and term.encode() not in body):
        raise RuntimeError(f"GET {path}: the patient searched for is not in the results")
    return elapsed


def measure(client: Client, terms: list[tuple[str, str]], rng: random.Random) -> dict:
    for kind, term in rng.sample(terms, min(WARMUP, len(terms))):
        timed_search(client, kind, term)
    samples: dict[str, list[float]] = {"name": [], "national_id": []}
    for i, (kind, term) in enumerate(terms, start=1):
        samples[kind].append(timed_search(client, kind, term))
        if i % 50 == 0:
            log(f"{i}/{len(terms)} searches, last {kind} {term!r}: {samples[kind][-1]:.1f} ms")
    # The list with no search: COUNT(*) of the whole tab and its first page.
    unfiltered = []
    for _ in range(20):
        t0 = time.perf_counter()
        status, _, _ = client.get("/patients/list/mine/", headers={"X-Requested-With": "fetch"})
        unfiltered.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            raise RuntimeError(f"GET /patients/list/mine/: HTTP {status}")
    samples["unfiltered"] = unfiltered
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="patients (default 100000)")
    parser.add_argument(
        "--requests", type=int, default=200, help="searches of each kind (default 200)"
    )
    parser.add_argument("--json-out", type=Path, help="also write the JSON line to this file")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.requests < 1:
        parser.error("--rows and --requests must be at least 1")
    rng = random.Random(SEED)

    with running_deployment(
        "bench", processes=1, postgres_url=POSTGRES_URL, redis_url=REDIS_URL, consulta_env="demo"
    ) as deployment:
        base = deployment.urls[0]
        log(f"deployment up at {base}; seeding the demo clinic and {args.rows} patients")
        seed, patients = seed_registry(deployment, args.rows, rng)
        client = Client(base)
        try:
            sign_in(client, seed["links"]["doctor"])
            log("signed in as the demo doctor")
            samples = measure(client, search_terms(patients, args.requests, rng), rng)
        except Exception:
            log(server_logs(deployment))
            raise
        finally:
            client.close()

    both = samples["name"] + samples["national_id"]
    result = {
        "bench": "patients_search",
        "rows": args.rows,
        "requests": len(both),
        "p50_ms": rounded(percentile(both, 50)),
        "p95_ms": rounded(percentile(both, 95)),
        "p95_name_ms": rounded(percentile(samples["name"], 95)),
        "p95_national_id_ms": rounded(percentile(samples["national_id"], 95)),
        "p95_unfiltered_ms": rounded(percentile(samples["unfiltered"], 95)),
    }
    emit(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
