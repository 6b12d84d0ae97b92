"""A call forced through TURN: a coturn started by the test on loopback with
`use-auth-secret`, Consulta handing each participant an ephemeral credential, and both
browsers restricted to relay candidates (`iceTransportPolicy: "relay"`)."""

import secrets
import subprocess
import time

import pytest
from playwright.sync_api import expect

from tests.browser.pages import (
    doctor_admits_from_dashboard,
    patient_opens_waiting_room,
    sign_in_with_link,
    wait_for_frames,
)
from tests.browser.server import free_port, running_deployment, server_logs
from tests.services import require_coturn

pytestmark = pytest.mark.browser

# The candidate types of the pair that carries the call, as the browser sees them.
SELECTED_PAIR_JS = """async () => {
  const pc = window.consulta && window.consulta.pc;
  if (!pc) return null;
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((r) => {
    if (r.type === "candidate-pair" && r.state === "succeeded" && r.nominated) pair = r;
  });
  if (!pair) return null;
  return [stats.get(pair.localCandidateId).candidateType,
          stats.get(pair.remoteCandidateId).candidateType];
}"""


@pytest.fixture(scope="module")
def coturn(tmp_path_factory):
    executable = require_coturn()
    port, secret = free_port(), secrets.token_urlsafe(24)
    log = tmp_path_factory.mktemp("coturn") / "turnserver.log"
    process = subprocess.Popen(  # noqa: S603
        [
            executable,
            "--listening-ip=127.0.0.1",
            f"--listening-port={port}",
            "--relay-ip=127.0.0.1",
            "--min-port=49200",
            "--max-port=49400",
            "--use-auth-secret",
            f"--static-auth-secret={secret}",
            "--realm=consulta.test",
            "--allow-loopback-peers",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--no-stdout-log",
            f"--log-file={log}",
            "--simple-log",
            "--verbose",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    time.sleep(0.5)
    assert process.poll() is None, f"turnserver exited: {log.read_text() if log.exists() else ''}"
    yield {"url": f"turn:127.0.0.1:{port}?transport=udp", "secret": secret, "log": log}
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def relayed(coturn):
    env = {
        "TURN_URLS": coturn["url"],
        "TURN_SECRET": coturn["secret"],
        "ICE_TRANSPORT_POLICY": "relay",
    }
    with running_deployment("turn", extra_env=env) as deployment:
        yield deployment


def test_a_call_forced_through_turn_carries_video_both_ways(chromium, relayed, coturn):
    seed = relayed.seed_visits(1)
    visit_id, base = seed["visit_ids"][0], relayed.urls[0]
    doctor_context, patient_context = chromium.new_context(), chromium.new_context()
    try:
        doctor, patient = doctor_context.new_page(), patient_context.new_page()
        sign_in_with_link(doctor, base, seed["links"]["doctor"])
        sign_in_with_link(patient, base, seed["links"]["patient"])
        patient_opens_waiting_room(patient, visit_id)
        doctor_admits_from_dashboard(doctor, visit_id, "Paolo Esposito")
        assert wait_for_frames(patient, minimum=5) >= 5
        assert wait_for_frames(doctor, minimum=5) >= 5
        for page in (doctor, patient):
            expect(page.locator("#call-status")).to_have_text("You are in the visit.")
            assert page.evaluate(SELECTED_PAIR_JS) == ["relay", "relay"]
    except Exception:
        print(server_logs(relayed))
        print(coturn["log"].read_text() if coturn["log"].exists() else "no coturn log")
        raise
    finally:
        doctor_context.close()
        patient_context.close()
