"""Export of a large registry: rows per second and the server's peak memory for a full CSV
export (`/patients/export/?filter=all`) of a doctor with N patients, through the real view,
against a real deployment (PostgreSQL + Redis, one process, CONSULTA_ENV=demo).

    uv run python bench/patients_export.py [--rows N] [--json-out PATH]

Progress goes to stderr; the last line on stdout is one JSON object (see bench/README.md).
"""

import argparse
import random
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import emit, log  # noqa: E402
from bench.patients_search import SEED, Client, seed_registry, sign_in  # noqa: E402
from tests.browser.server import running_deployment, server_logs  # noqa: E402
from tests.services import POSTGRES_URL, REDIS_URL  # noqa: E402

READ_SIZE = 64 * 1024
SAMPLE_EVERY_S = 0.02


def server_pid(base_url: str) -> int:
    """The uvicorn process serving `base_url` (`python -m consulta serve --port N`)."""
    port = str(urlsplit(base_url).port)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if "serve" in args and "--port" in args and port in args and "consulta" in args:
            return int(entry.name)
    raise RuntimeError(f"no server process found for port {port}")


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak since the process started) of `pid`, in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024  # kB
    return values


class RssSampler(threading.Thread):
    """Polls VmRSS while the export runs: the shape of memory over time, not just the peak."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self.stopped = threading.Event()

    def run(self):
        t0 = time.perf_counter()
        while not self.stopped.is_set():
            self.samples.append((time.perf_counter() - t0, memory_mb(self.pid)["VmRSS"]))
            self.stopped.wait(SAMPLE_EVERY_S)


def export(client: Client) -> dict:
    """GET the full export, reading the body as it streams and throwing it away."""
    t0 = time.perf_counter()
    response = client.open("GET", "/patients/export/?filter=all")
    if response.status != 200:
        raise RuntimeError(f"GET /patients/export/: HTTP {response.status}")
    first_byte = None
    size = lines = 0
    while chunk := response.read1(READ_SIZE):
        if first_byte is None:
            first_byte = time.perf_counter() - t0
        size += len(chunk)
        lines += chunk.count(b"\n")  # rows end in \r\n; no seeded cell holds a line break
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "first_byte_s": first_byte, "bytes": size, "rows": lines - 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="patients (default 100000)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed exports first (default 1)")
    parser.add_argument("--json-out", type=Path, help="also write the JSON line to this file")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.warmup < 0:
        parser.error("--rows must be at least 1 and --warmup at least 0")
    rng = random.Random(SEED)

    with running_deployment(
        "bench", processes=1, postgres_url=POSTGRES_URL, redis_url=REDIS_URL, consulta_env="demo"
    ) as deployment:
        base = deployment.urls[0]
        log(f"deployment up at {base}; seeding the demo clinic and {args.rows} patients")
        seed, _ = seed_registry(deployment, args.rows, rng)
        pid = server_pid(base)
        client = Client(base)
        try:
            sign_in(client, seed["links"]["doctor"])
            log("signed in as the demo doctor")
            for _ in range(args.warmup):
                warm = export(client)
                log(f"warm-up export: {warm['rows']} rows in {warm['seconds']:.2f} s")
            before = memory_mb(pid)
            log(f"server pid {pid}: VmRSS {before['VmRSS']:.1f} MiB, VmHWM {before['VmHWM']:.1f}")
            sampler = RssSampler(pid)
            sampler.start()
            try:
                result = export(client)
            finally:
                sampler.stopped.set()
                sampler.join()
            after = memory_mb(pid)
        except Exception:
            log(server_logs(deployment))
            raise
        finally:
            client.close()

    if result["rows"] < args.rows:
        raise RuntimeError(f"the export had {result['rows']} rows, expected {args.rows} or more")
    log(
        f"exported {result['rows']} rows, {result['bytes'] / 2**20:.1f} MiB in "
        f"{result['seconds']:.2f} s (first byte after {result['first_byte_s']:.2f} s); "
        f"VmRSS {after['VmRSS']:.1f} MiB after, VmHWM {after['VmHWM']:.1f} MiB"
    )
    # VmHWM is the peak since the process started, but the kernel updates it lazily: a read
    # may show less than an earlier one. Take the highest of every reading.
    peak = max([before["VmHWM"], after["VmHWM"], *(mb for _, mb in sampler.samples)])
    step = max(1, len(sampler.samples) // 10)
    log(
        "VmRSS during the export (s: MiB): "
        + ", ".join(f"{t:.2f}: {mb:.0f}" for t, mb in sampler.samples[::step])
    )
    output = {
        "bench": "patients_export",
        "rows": args.rows,
        "seconds": round(result["seconds"], 3),
        "rows_per_s": round(result["rows"] / result["seconds"]),
        "peak_rss_mb": round(peak, 1),
        "rss_before_mb": round(before["VmRSS"], 1),
        "rss_after_mb": round(after["VmRSS"], 1),
        "first_byte_s": round(result["first_byte_s"], 3),
    }
    emit(output, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
