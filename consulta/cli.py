"""`consulta demo | serve | worker | <any Django management command>`."""

import argparse
import os
import signal
import subprocess
import sys


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consulta.settings")
    command = argv[0] if argv else "help"
    if command == "demo":
        _demo(argv[1:])
    elif command == "serve":
        _serve(argv[1:])
    elif command == "worker":
        _django(["db_worker", *argv[1:]])
    elif command == "import-patients":
        _django(["import_patients", *argv[1:]])
    else:
        _django(argv)


def _django(argv: list[str]) -> None:
    from django.core.management import execute_from_command_line

    execute_from_command_line(["consulta", *argv])


def _serve(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="consulta serve", description="Serve HTTP and WebSocket with uvicorn (production)."
    )
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1")))
    parser.add_argument("--migrate", action="store_true", help="apply migrations first")
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.conf import settings

    if args.workers > 1 and not settings.REDIS_URL:
        parser.error("several workers share realtime state through Redis: set REDIS_URL.")
    if args.migrate:
        _django(["migrate", "--no-input"])
    import uvicorn

    uvicorn.run(
        "consulta.asgi:application",
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        log_level=os.environ.get("LOG_LEVEL", "info").lower(),
        lifespan="off",
    )


def _demo(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="consulta demo",
        description="Migrate, seed the demo clinic, print sign-in links and serve on one process.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    os.environ.setdefault("CONSULTA_ENV", "demo")
    os.environ.setdefault("PUBLIC_URL", f"http://{args.host}:{args.port}")

    import django

    django.setup()
    from django.conf import settings

    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    _django(["migrate", "--no-input", "--verbosity", "0"])
    _django(["seed_demo", "--reuse-unstarted"])
    # The worker sends the mail (sign-in codes, visit notices) and prints it here.
    worker = subprocess.Popen([sys.executable, "-m", "consulta", "worker"])  # noqa: S603
    try:
        print(f"Consulta is running on {settings.PUBLIC_URL}/ — press Ctrl+C to stop.", flush=True)
        import uvicorn

        uvicorn.run(
            "consulta.asgi:application",
            host=args.host,
            port=args.port,
            log_level="warning",
            lifespan="off",
        )
    finally:
        _stop(worker)


def _stop(process: subprocess.Popen, grace_seconds: float = 10) -> None:
    """Ask a child process to finish; end it if it has not within the grace period, so that
    no demo worker outlives its demo."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
