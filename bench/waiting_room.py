"""Waiting room fan-out: N patients connected to one server process (Redis channel layer),
each says "ready" in turn; the time from the patient's message to the doorbell on the
doctor's dashboard socket, against a real deployment (PostgreSQL + Redis, one process,
CONSULTA_ENV=demo); compared with the same fan-out through a bare `websockets` server in
another process, measured in the same run. Also measured, apart from the ratio: the same
fan-out through uvicorn, Channels and the Redis layer with none of Consulta (the floor).

    uv run python bench/waiting_room.py [--patients N] [--json-out PATH]

Progress goes to stderr; the last line on stdout is one JSON object (see bench/README.md).
Targets: p99_ms <= 50, ratio_p99 <= 3.
"""

import argparse
import asyncio
import gc
import json
import multiprocessing
import random
import resource
import sys
import time
from contextlib import suppress
from importlib import import_module
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from bench.availability import django_setup  # noqa: E402
from bench.common import emit, log, percentile, rounded  # noqa: E402
from bench.patients_export import memory_mb, server_pid  # noqa: E402
from bench.patients_search import DEMO_DOCTOR_EMAIL, generate_patients  # noqa: E402
from tests.browser.server import running_deployment, server_logs  # noqa: E402
from tests.services import POSTGRES_URL, REDIS_URL  # noqa: E402

SEED = 20261121
CONCURRENCY = 50  # sockets being opened at the same time
TIMEOUT_S = 10  # for a handshake, a hello, a doorbell
MAX_FAILURES = 5  # readies without a doorbell before the run gives up
SETTLE_S = 1.0  # before reading the server's memory
READY = '{"type":"ready"}'
DOORBELL = '{"type":"visits_changed"}'
SESSION_BACKEND = "django.contrib.auth.backends.ModelBackend"


def run(coroutine):
    """asyncio.run on uvloop when installed, as uvicorn ("auto") runs: the same loop on every
    side."""
    try:
        import uvloop
    except ImportError:
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coroutine)


def raise_nofile_limit(needed: int) -> None:
    """Raise the soft limit on open files to the hard limit; child processes (the servers)
    inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        log(f"warning: open files limited to {target}, {needed} wanted: raise `ulimit -Hn`")


# --- Seeding (setup, not measured) --------------------------------------------------------


def seed_waiting_room(deployment, patients: int, rng: random.Random) -> dict:
    """The demo clinic plus `patients` patients of the demo doctor, each with a user and a
    video visit for now, and a signed-in session for each of them and for the doctor."""
    t0 = time.perf_counter()
    deployment.seed_visits(0)
    django_setup(deployment.env)
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.db import connections, transaction
    from django.utils import timezone

    from consulta.accounts.middleware import _SESSION_KEY as LAST_ACTIVITY_KEY
    from consulta.accounts.models import StaffMember, User
    from consulta.patients.models import Patient
    from consulta.visits.models import Visit

    store_class = import_module(settings.SESSION_ENGINE).SessionStore

    def session_cookie(user) -> str:
        """A session as signing in leaves it (what Channels' AuthMiddleware reads)."""
        store = store_class()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = SESSION_BACKEND
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store[LAST_ACTIVITY_KEY] = time.time()
        store.create()
        return f"{settings.SESSION_COOKIE_NAME}={store.session_key}"

    doctor = StaffMember.objects.select_related("user").get(user__email=DEMO_DOCTOR_EMAIL)
    now = timezone.now()
    people = generate_patients(patients, rng)
    with transaction.atomic():
        users = []
        for n, person in enumerate(people, start=1):
            user = User(
                email=f"paziente{n:05d}@bench.consulta.test",
                first_name=person["first_name"],
                last_name=person["last_name"],
            )
            user.set_unusable_password()
            users.append(user)
        User.objects.bulk_create(users, batch_size=1000)
        records = Patient.objects.bulk_create(
            (
                Patient(
                    clinic_id=doctor.clinic_id,
                    doctor=doctor,
                    user=user,
                    first_name=person["first_name"],
                    last_name=person["last_name"],
                    national_id=person["national_id"],
                    date_of_birth=person["date_of_birth"],
                    email=user.email,
                    phone=person["phone"],
                    state=Patient.State.SSN,
                )
                for user, person in zip(users, people, strict=True)
            ),
            batch_size=1000,
        )
        visits = Visit.objects.bulk_create(
            (
                Visit(
                    clinic_id=doctor.clinic_id,
                    patient=record,
                    doctor=doctor,
                    scheduled_at=now,
                    created_by=doctor.user,
                )
                for record in records
            ),
            batch_size=1000,
        )
        cookies = [session_cookie(user) for user in users]
        doctor_cookie = session_cookie(doctor.user)
    connections.close_all()
    # A settled database, as autovacuum leaves it, and no autovacuum during the measurement.
    with psycopg.connect(deployment.env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    log(
        f"seeded {patients} patients with users, visits for now and sessions "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    return {
        "clinic_id": doctor.clinic_id,
        "doctor_cookie": doctor_cookie,
        "patients": [(str(v.pk), c) for v, c in zip(visits, cookies, strict=True)],
    }


# --- Client side (the same for both servers) -----------------------------------------------


class Doorbells:
    """Reads the dashboard socket in the background and stamps each message on arrival."""

    def __init__(self, socket: ClientConnection):
        self.queue: asyncio.Queue[tuple[float, str | None]] = asyncio.Queue()
        self.task = asyncio.create_task(self._read(socket))

    async def _read(self, socket: ClientConnection) -> None:
        try:
            async for message in socket:
                self.queue.put_nowait((time.perf_counter(), message))
        except ConnectionClosed:
            pass
        self.queue.put_nowait((time.perf_counter(), None))  # closed

    def drain(self) -> int:
        stale = 0
        while not self.queue.empty():
            _, message = self.queue.get_nowait()
            if message is None:
                raise RuntimeError("the dashboard socket closed")
            stale += 1
        return stale

    async def next(self) -> tuple[float, str]:
        stamp, message = await asyncio.wait_for(self.queue.get(), TIMEOUT_S)
        if message is None:
            raise RuntimeError("the dashboard socket closed")
        return stamp, message


async def open_socket(url: str, origin: str, cookie: str | None) -> ClientConnection:
    """A socket as a browser opens it: Origin, the session cookie; no pings of its own (the
    server pings; the client answers)."""
    return await connect(
        url,
        origin=origin,
        additional_headers={"Cookie": cookie} if cookie else None,
        open_timeout=TIMEOUT_S,
        ping_interval=None,
        max_queue=64,
    )


async def open_patients(
    ws_base: str, origin: str, patients: list[tuple[str, str | None]], path: str
) -> tuple[list[ClientConnection | None], list[str]]:
    """Open one socket per patient, CONCURRENCY at a time, and read each one's hello.
    Returns the sockets (None where refused) and the errors."""
    gate = asyncio.Semaphore(CONCURRENCY)
    errors: list[str] = []
    done = 0

    async def one(visit_id: str, cookie: str | None) -> ClientConnection | None:
        nonlocal done
        async with gate:
            try:
                socket = await open_socket(f"{ws_base}{path.format(visit_id)}", origin, cookie)
            except Exception as error:
                errors.append(f"visit {visit_id}: {type(error).__name__}: {error}")
                return None
            try:
                hello = json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT_S))
                if hello.get("type") != "hello" or hello.get("role", "patient") != "patient":
                    raise RuntimeError(f"expected a patient's hello, got {hello}")
                if hello.get("status", "scheduled") != "scheduled":
                    raise RuntimeError(f"visit not scheduled: {hello}")
            except Exception as error:
                errors.append(f"visit {visit_id}: no hello: {type(error).__name__}: {error}")
                await socket.close()
                return None
        done += 1
        if done % 200 == 0:
            log(f"  {done}/{len(patients)} sockets open")
        return socket

    sockets = await asyncio.gather(*(one(v, c) for v, c in patients))
    return list(sockets), errors


async def ring(
    label: str,
    sockets: list[ClientConnection],
    doorbells: Doorbells,
    reply: str | None,
) -> tuple[list[float], list[str]]:
    """Each patient in turn says ready; the time from the send to the doorbell's arrival.
    `reply`: the status the patient's own socket must then report (None: no reply)."""
    samples: list[float] = []
    errors: list[str] = []
    # The bench process is the instrument: no collection of its own (Django, 1,000 client
    # sockets) may pause it in the middle of a measurement.
    gc.collect()
    gc.disable()
    try:
        stale = await _ring(label, sockets, doorbells, reply, samples, errors)
    finally:
        gc.enable()
    if stale:
        errors.append(f"{label}: {stale} doorbells nobody asked for")
    return samples, errors


async def _ring(
    label: str,
    sockets: list[ClientConnection],
    doorbells: Doorbells,
    reply: str | None,
    samples: list[float],
    errors: list[str],
) -> int:
    """The loop of ring(); returns how many doorbells came that no ready had caused."""
    stale = 0
    for i, socket in enumerate(sockets, start=1):
        stale += doorbells.drain()
        t0 = time.perf_counter()
        await socket.send(READY)
        try:
            stamp, message = await doorbells.next()
            if message != DOORBELL:
                raise RuntimeError(f"unexpected dashboard message {message!r}")
            samples.append((stamp - t0) * 1000)
        except (TimeoutError, RuntimeError) as error:
            errors.append(f"{label} ready {i}: {type(error).__name__}: {error}")
        if reply is not None:
            try:
                answer = json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT_S))
                if answer.get("type") != "state" or answer.get("status") != reply:
                    raise RuntimeError(f"patient got {answer}")
            except (TimeoutError, RuntimeError, ConnectionClosed) as error:
                errors.append(f"{label} ready {i}: {type(error).__name__}: {error}")
        if len(errors) >= MAX_FAILURES:
            log(f"{label}: {len(errors)} failures, giving up at {i}/{len(sockets)}")
            break
        if i % 200 == 0 or i == len(sockets):
            log(
                f"  {label} {i}/{len(sockets)}: last {samples[-1] if samples else 0:.2f} ms, "
                f"p50 {percentile(samples, 50) or 0:.2f}, p99 {percentile(samples, 99) or 0:.2f}"
            )
    return stale


async def close_all(sockets) -> None:
    async def close(socket):
        with suppress(Exception):
            await asyncio.wait_for(socket.close(), TIMEOUT_S)

    gate = asyncio.Semaphore(CONCURRENCY * 4)

    async def gated(socket):
        async with gate:
            await close(socket)

    await asyncio.gather(*(gated(s) for s in sockets if s is not None))


# --- Consulta -------------------------------------------------------------------------------


async def measure_consulta(base: str, pid: int, seed: dict) -> dict:
    ws_base = base.replace("http://", "ws://", 1)
    dashboard = await open_socket(f"{ws_base}/ws/clinic/visits/", base, seed["doctor_cookie"])
    doorbells = Doorbells(dashboard)
    # One patient apart: opened and made ready before memory is read and before timing, so
    # what the first socket and the first ready load (imports, caches) is not counted.
    warmup, *patients = seed["patients"]
    warm, errors = await open_patients(ws_base, base, [warmup], "/ws/visits/{}/")
    if errors:
        raise RuntimeError(f"the warm-up patient's socket was refused: {errors[0]}")
    _, warm_errors = await ring("warm-up", warm, doorbells, reply="waiting")
    if warm_errors:
        raise RuntimeError(f"the warm-up ready failed: {warm_errors[0]}")
    await asyncio.sleep(SETTLE_S)
    before = memory_mb(pid)["VmRSS"]
    log(f"server pid {pid}: VmRSS {before:.1f} MiB with the dashboard and one patient")

    t0 = time.perf_counter()
    sockets, refused = await open_patients(ws_base, base, patients, "/ws/visits/{}/")
    connect_seconds = time.perf_counter() - t0
    opened = [s for s in sockets if s is not None]
    log(
        f"{len(opened)}/{len(patients)} patient sockets open in {connect_seconds:.1f} s "
        f"({len(opened) / connect_seconds:.0f}/s)"
    )
    for error in refused[:5]:
        log(f"  refused: {error}")
    await asyncio.sleep(SETTLE_S)
    after = memory_mb(pid)["VmRSS"]
    rss_per_conn_kb = (after - before) * 1024 / len(opened) if opened else None
    log(f"server VmRSS {after:.1f} MiB: {rss_per_conn_kb or 0:.1f} kB per patient socket")

    samples, errors = await ring("consulta", opened, doorbells, reply="waiting")
    for error in errors[:5]:
        log(f"  {error}")
    log("closing the sockets (each waiting patient's departure is a write on the server)")
    await close_all([*sockets, *warm, dashboard])
    doorbells.task.cancel()
    return {
        "samples": samples,
        "refused": len(refused),
        "failures": len(errors),
        "connect_seconds": connect_seconds,
        "rss_per_conn_kb": rss_per_conn_kb,
    }


# --- The baseline: a bare websockets server in its own process --------------------------


def baseline_server(port_queue) -> None:
    """Runs in a child process: "/dashboard" is the doctor; any other path is a patient who
    gets a hello, and every message of a patient makes one doorbell on the dashboard."""
    from websockets.asyncio.server import serve

    async def main():
        dashboards = set()

        async def handler(socket):
            if socket.request.path == "/dashboard":
                dashboards.add(socket)
                try:
                    await socket.wait_closed()
                finally:
                    dashboards.discard(socket)
                return
            await socket.send('{"type":"hello"}')
            async for _ in socket:
                for dashboard in list(dashboards):
                    await dashboard.send(DOORBELL)

        async with serve(handler, "127.0.0.1", 0) as server:
            port_queue.put(server.sockets[0].getsockname()[1])
            await asyncio.Future()

    run(main())


async def measure_baseline(port: int, pid: int, patients: int, label: str = "baseline") -> dict:
    base = f"http://127.0.0.1:{port}"
    ws_base = f"ws://127.0.0.1:{port}"
    dashboard = await open_socket(f"{ws_base}/dashboard", base, None)
    doorbells = Doorbells(dashboard)
    warm, _ = await open_patients(ws_base, base, [("0", None)], "/patient/{}")
    await ring(f"{label} warm-up", warm, doorbells, reply=None)
    await asyncio.sleep(SETTLE_S)
    before = memory_mb(pid)["VmRSS"]
    t0 = time.perf_counter()
    sockets, refused = await open_patients(
        ws_base, base, [(str(n), None) for n in range(1, patients + 1)], "/patient/{}"
    )
    connect_seconds = time.perf_counter() - t0
    opened = [s for s in sockets if s is not None]
    await asyncio.sleep(SETTLE_S)
    after = memory_mb(pid)["VmRSS"]
    rss_per_conn_kb = (after - before) * 1024 / len(opened) if opened else None
    log(
        f"{label}: {len(opened)}/{patients} sockets open in {connect_seconds:.1f} s, "
        f"{rss_per_conn_kb or 0:.1f} kB per socket"
    )
    samples, errors = await ring(label, opened, doorbells, reply=None)
    for error in (refused + errors)[:5]:
        log(f"  {error}")
    await close_all([*sockets, *warm, dashboard])
    doorbells.task.cancel()
    return {
        "samples": samples,
        "failures": len(refused) + len(errors),
        "rss_per_conn_kb": rss_per_conn_kb,
    }


def channels_floor_server(port_queue, redis_url: str, prefix: str) -> None:
    """Runs in a child process: the same fan-out through uvicorn, Django Channels and the
    Redis channel layer, configured as Consulta's server configures them, with none of
    Consulta: no session, no database, no check. "/dashboard" joins a group; any other path is
    a patient who gets a hello, and every message of a patient is sent to that group. Not the
    baseline (which the issue defines as a bare websockets server): what the framework alone
    costs, so that the figures say how much of the latency is Consulta's own."""
    import socket

    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS={
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    "hosts": [{"address": redis_url, "socket_timeout": 30}],
                    "prefix": prefix,
                },
            }
        },
    )
    django.setup()
    import uvicorn
    from channels.generic.websocket import AsyncWebsocketConsumer

    class Endpoint(AsyncWebsocketConsumer):
        async def connect(self):
            self.dashboard = self.scope["path"] == "/dashboard"
            if self.dashboard:
                await self.channel_layer.group_add("dashboard", self.channel_name)
            await self.accept()
            if not self.dashboard:
                await self.send(text_data='{"type":"hello"}')

        async def receive(self, text_data=None, bytes_data=None):
            await self.channel_layer.group_send("dashboard", {"type": "doorbell"})

        async def doorbell(self, event):
            await self.send(text_data=DOORBELL)

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(2048)  # connections wait in the backlog until uvicorn accepts them
    port_queue.put(listener.getsockname()[1])
    config = uvicorn.Config(Endpoint.as_asgi(), log_level="warning", lifespan="off")
    uvicorn.Server(config).run(sockets=[listener])


def run_in_child(label: str, target, args: tuple, patients: int) -> dict:
    """Start `target(port_queue, *args)` in a child process and measure it as the baseline."""
    context = multiprocessing.get_context("spawn")
    port_queue = context.Queue()
    server = context.Process(target=target, args=(port_queue, *args), daemon=True)
    server.start()
    try:
        port = port_queue.get(timeout=30)
        log(f"{label} server on port {port}, pid {server.pid}")
        return run(measure_baseline(port, server.pid, patients, label))
    finally:
        server.terminate()
        server.join(timeout=10)


# --- Main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--patients", type=int, default=1000, help="patients connected (default 1000)"
    )
    parser.add_argument("--json-out", type=Path, help="also write the JSON line to this file")
    args = parser.parse_args(argv)
    if args.patients < 1:
        parser.error("--patients must be at least 1")
    # Both ends of every socket, here and in the servers (which inherit the limit).
    raise_nofile_limit(2 * args.patients + 500)
    started = time.perf_counter()

    log(f"baseline: {args.patients} patients through a bare websockets server")
    baseline = run_in_child("baseline websockets", baseline_server, (), args.patients)
    log(f"channels floor: {args.patients} patients through Channels and Redis, no Consulta")
    channels = run_in_child(
        "channels floor",
        channels_floor_server,
        (REDIS_URL, f"consulta-bench-floor-{random.randrange(16**8):08x}"),
        args.patients,
    )

    with running_deployment(
        "bench", processes=1, postgres_url=POSTGRES_URL, redis_url=REDIS_URL, consulta_env="demo"
    ) as deployment:
        base = deployment.urls[0]
        log(f"deployment up at {base}; seeding the demo clinic and {args.patients} patients")
        # One more patient than measured: the warm-up one.
        seed = seed_waiting_room(deployment, args.patients + 1, random.Random(SEED))
        try:
            consulta = run(measure_consulta(base, server_pid(base), seed))
        except Exception:
            log(server_logs(deployment))
            raise

    samples, floor = consulta["samples"], baseline["samples"]
    p99, baseline_p99 = percentile(samples, 99), percentile(floor, 99)
    result = {
        "bench": "waiting_room",
        "patients": args.patients,
        "p50_ms": rounded(percentile(samples, 50), 2),
        "p99_ms": rounded(p99, 2),
        "max_ms": rounded(max(samples, default=None), 2),
        "baseline_p50_ms": rounded(percentile(floor, 50), 2),
        "baseline_p99_ms": rounded(baseline_p99, 2),
        "ratio_p99": round(p99 / baseline_p99, 2) if p99 is not None and baseline_p99 else None,
        "rss_per_conn_kb": rounded(consulta["rss_per_conn_kb"]),
        "baseline_rss_per_conn_kb": rounded(baseline["rss_per_conn_kb"]),
        "channels_floor_p50_ms": rounded(percentile(channels["samples"], 50), 2),
        "channels_floor_p99_ms": rounded(percentile(channels["samples"], 99), 2),
        "connect_seconds": rounded(consulta["connect_seconds"], 2),
        "refused": consulta["refused"],
        "failures": consulta["failures"],
        "baseline_failures": baseline["failures"],
        "channels_floor_failures": channels["failures"],
    }
    log(f"whole run {time.perf_counter() - started:.0f} s")
    emit(result, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
