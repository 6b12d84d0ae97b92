"""Real Consulta servers in subprocesses, on their own database, for browser tests and
benchmarks: the embedded default, or PostgreSQL + Redis with one or more processes."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from urllib.request import urlopen

import psycopg

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Deployment:
    name: str
    urls: list[str]
    env: dict[str, str]
    seed: dict = field(default_factory=dict)

    def consulta(self, *args: str) -> str:
        return _run_consulta(self.env, *args)

    def seed_visits(self, visits: int = 1) -> dict:
        return json.loads(self.consulta("seed_demo", "--json", "--visits", str(visits)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_consulta(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "consulta", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if result.returncode != 0:
        raise RuntimeError(f"consulta {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _wait_until_up(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on {url} exited with {process.returncode}")
        try:
            with urlopen(f"{url}/healthz", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on {url} did not answer within {timeout}s")


@contextmanager
def _postgres_database(admin_url: str):
    name = f"consulta_browser_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def running_deployment(
    name: str,
    *,
    processes: int = 1,
    postgres_url: str | None = None,
    redis_url: str | None = None,
    consulta_env: str = "test",
    log_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
):
    """Start `processes` uvicorn servers sharing one fresh database (and Redis, if given)."""
    ports = [free_port() for _ in range(processes)]
    with tempfile.TemporaryDirectory(prefix="consulta-") as data_dir:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))},
            "CONSULTA_ENV": consulta_env,
            "CONSULTA_DATA_DIR": data_dir,
            "PUBLIC_URL": f"http://127.0.0.1:{ports[0]}",
            "LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }
        if redis_url:
            env["REDIS_URL"] = redis_url
            env["REDIS_PREFIX"] = f"consulta-test-{uuid.uuid4().hex[:8]}"
        database = _postgres_database(postgres_url) if postgres_url else _sqlite(data_dir)
        with database as database_url:
            env["DATABASE_URL"] = database_url
            _run_consulta(env, "migrate", "--no-input", "--verbosity", "0")
            servers, logs = [], []
            try:
                for port in ports:
                    log = open(Path(log_dir or data_dir) / f"server-{name}-{port}.log", "w")  # noqa: SIM115
                    logs.append(log)
                    servers.append(
                        subprocess.Popen(  # noqa: S603
                            [sys.executable, "-m", "consulta", "serve", "--port", str(port)],
                            env=env,
                            cwd=ROOT,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                    )
                urls = [f"http://127.0.0.1:{port}" for port in ports]
                for url, server in zip(urls, servers, strict=False):
                    _wait_until_up(url, server)
                yield Deployment(name=name, urls=urls, env=env)
            finally:
                for server in servers:
                    server.terminate()
                for server in servers:
                    try:
                        server.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        server.kill()
                for log in logs:
                    log.close()


@contextmanager
def _sqlite(data_dir: str):
    yield f"sqlite:///{data_dir}/consulta.sqlite3"


def server_logs(deployment: Deployment) -> str:
    data_dir = Path(deployment.env["CONSULTA_DATA_DIR"])
    return "\n".join(p.read_text() for p in sorted(data_dir.glob("server-*.log")))
