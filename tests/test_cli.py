import os
import subprocess
import sys


def test_serve_refuses_several_workers_without_redis(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "consulta", "serve", "--workers", "2"],
        env={**env, "CONSULTA_ENV": "test", "CONSULTA_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "several workers share realtime state through Redis: set REDIS_URL" in result.stderr


def test_seed_demo_prints_single_use_links(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(CONSULTA_ENV="test", CONSULTA_DATA_DIR=str(tmp_path))
    for args in (["migrate", "--no-input", "-v", "0"], ["seed_demo"]):
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "consulta", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
    assert result.stdout.count("/login/link/") == 5
    assert "Patient Paolo Esposito" in result.stdout


def test_a_child_that_ignores_the_request_to_stop_is_ended():
    """The demo's worker never outlives the demo, even if it does not stop when asked."""
    from consulta.cli import _stop

    stubborn = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert stubborn.stdout.readline().strip() == "ready"
    _stop(stubborn, grace_seconds=0.5)
    assert stubborn.poll() is not None
