"""The waiting room's connection test, server side: a real aiortc client plays the browser
against the server peer (the echo, the upload count, the download stream, the limits), and
the endpoint is open to the visit's participants only."""

import asyncio
import json
import threading

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient
from django.urls import reverse

from consulta.lib.errors import DomainError
from consulta.visits import nettest

TIMEOUT = 10


class Browser:
    """A WebRTC client that behaves like the page's script: three data channels, and an
    offer that carries every candidate (the server takes no trickled ones)."""

    def __init__(self):
        self.pc = RTCPeerConnection()
        self.channels = {
            "probe": self.pc.createDataChannel("probe", ordered=False, maxRetransmits=0),
            "upload": self.pc.createDataChannel("upload"),
            "download": self.pc.createDataChannel("download"),
        }
        loop = asyncio.get_running_loop()
        self.inbox = {name: asyncio.Queue() for name in self.channels}
        self.opened = {name: loop.create_future() for name in self.channels}
        for name, channel in self.channels.items():
            channel.on("message", self.inbox[name].put_nowait)
            channel.on(
                "open", lambda future=self.opened[name]: future.done() or future.set_result(1)
            )

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await asyncio.wait_for(asyncio.gather(*self.opened.values()), TIMEOUT)

    def send(self, name: str, data) -> None:
        self.channels[name].send(data)

    async def receive(self, name: str):
        return await asyncio.wait_for(self.inbox[name].get(), TIMEOUT)

    async def close(self) -> None:
        await self.pc.close()


async def connected_browser(user_id: int = 1, **options) -> Browser:
    browser = Browser()
    answer = await nettest.nettest_answer(
        user_id=user_id, offer_sdp=await browser.offer(), ice_servers=[], **options
    )
    await browser.accept(answer)
    return browser


async def eventually(condition, timeout: float = TIMEOUT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition still false"
        await asyncio.sleep(0.05)


def run_isolated(scenario):
    """Run `scenario()` on its own event loop in its own thread: when browser tests ran
    first in this process, Playwright's loop still owns the main thread."""
    outcome: dict = {}

    async def with_cleanup():
        try:
            return await scenario()
        finally:
            await nettest.nettest_close_all()

    def target():
        try:
            outcome["value"] = asyncio.run(with_cleanup())
        except BaseException as error:  # handed to the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the scenario did not finish"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


# --- the server peer ---------------------------------------------------------------------


def test_probes_come_back_unchanged():
    async def scenario():
        browser = await connected_browser()
        probes = [json.dumps({"seq": n, "t": 1000.5 + n}) for n in range(5)] + [b"\x00\x01"]
        for probe in probes:
            browser.send("probe", probe)
        echoed = [await browser.receive("probe") for _ in probes]
        await browser.close()
        return probes, echoed

    probes, echoed = run_isolated(scenario)
    assert sorted(echoed, key=repr) == sorted(probes, key=repr)


def test_the_server_counts_what_was_uploaded():
    async def scenario():
        browser = await connected_browser()
        for _ in range(20):
            browser.send("upload", bytes(16 * 1024))
        browser.send("upload", "done")
        figures = json.loads(await browser.receive("upload"))
        await browser.close()
        return figures

    figures = run_isolated(scenario)
    assert figures["bytes"] == 20 * 16 * 1024
    assert figures["seconds"] >= 0


def test_the_server_streams_chunks_then_says_done():
    async def scenario():
        browser = await connected_browser(download_seconds=0.3)
        browser.send("download", "start")
        chunks = []
        while (message := await browser.receive("download")) != "done":
            chunks.append(message)
        await browser.close()
        return chunks

    chunks = run_isolated(scenario)
    assert len(chunks) > 1
    assert all(chunk == bytes(nettest.CHUNK_BYTES) for chunk in chunks)


def test_a_new_test_by_the_same_user_closes_the_previous_one():
    async def scenario():
        first = await connected_browser(user_id=7)
        first_peer = nettest._peers[7]
        second = await connected_browser(user_id=7)
        state = (first_peer.closed, first_peer.pc.connectionState, nettest.open_peer_count())
        second.send("probe", "still here")
        echoed = await second.receive("probe")
        await first.close()
        await second.close()
        return state, echoed

    (closed, connection_state, open_peers), echoed = run_isolated(scenario)
    assert closed and connection_state == "closed"
    assert open_peers == 1
    assert echoed == "still here"


def test_the_peer_closes_when_the_browser_closes():
    async def scenario():
        browser = await connected_browser()
        assert nettest.open_peer_count() == 1
        await browser.close()
        await eventually(lambda: nettest.open_peer_count() == 0)

    run_isolated(scenario)


def test_the_peer_closes_after_its_lifetime():
    async def scenario():
        browser = await connected_browser(lifetime=0.5)
        peer = nettest._peers[1]
        await eventually(lambda: nettest.open_peer_count() == 0, timeout=3)
        await eventually(lambda: peer.pc.connectionState == "closed", timeout=3)
        await browser.close()

    run_isolated(scenario)


def test_a_process_runs_at_most_the_configured_number_of_peers(settings):
    settings.NETTEST_MAX_PEERS = 2

    async def scenario():
        browsers = [await connected_browser(user_id=uid) for uid in (1, 2)]
        try:
            await nettest.nettest_answer(
                user_id=3, offer_sdp=await Browser().offer(), ice_servers=[]
            )
        except DomainError as refusal:
            refused = refusal
        else:
            refused = None
        # The same user again replaces their own test: that is no extra peer.
        browsers.append(await connected_browser(user_id=2))
        count = nettest.open_peer_count()
        for browser in browsers:
            await browser.close()
        return refused, count

    refused, count = run_isolated(scenario)
    assert refused is not None and refused.code == "busy"
    assert "Too many connection tests" in refused.message
    assert count == 2


def test_an_offer_without_a_data_channel_or_unreadable_is_refused():
    async def scenario():
        refusals = []
        for sdp in ("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n", "v=0\r\nm=application nonsense\r\n"):
            try:
                await nettest.nettest_answer(user_id=1, offer_sdp=sdp, ice_servers=[])
            except DomainError as refusal:
                refusals.append(refusal.code)
        return refusals, nettest.open_peer_count()

    refusals, open_peers = run_isolated(scenario)
    assert refusals == ["invalid", "invalid"]
    assert open_peers == 0


# --- the endpoint ------------------------------------------------------------------------


def endpoint(visit) -> str:
    return reverse("visit_connection_test", args=[visit.pk])


@pytest.fixture
async def closes_peers():
    yield
    await nettest.nettest_close_all()
    # The async client ran the view's database work on asgiref's own thread; its connection
    # would still be open when the test database is dropped at the end of the run.
    await sync_to_async(connections.close_all)()


async def signed_in(who, **options) -> AsyncClient:
    client = AsyncClient(**options)
    await client.aforce_login(
        getattr(who, "user", who), backend="django.contrib.auth.backends.ModelBackend"
    )
    return client


async def post_offer(client: AsyncClient, visit, sdp: str):
    return await client.post(
        endpoint(visit), json.dumps({"sdp": sdp}), content_type="application/json"
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who", ["patient", "doctor"])
async def test_a_participant_gets_an_answer_and_the_test_runs(cast, visit, who, closes_peers):
    client = await signed_in(getattr(cast, who))
    browser = Browser()
    response = await post_offer(client, visit, await browser.offer())
    assert response.status_code == 200
    await browser.accept(response.json()["sdp"])
    browser.send("probe", "ping")
    assert await browser.receive("probe") == "ping"
    await browser.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "who", ["doctor2", "secretary", "clinic_admin", "patient_of_doctor2", "other_patient"]
)
async def test_nobody_else_can_test_against_the_visit(cast, visit, who, closes_peers):
    client = await signed_in(getattr(cast, who))
    response = await post_offer(client, visit, "v=0\r\nm=application 9\r\n")
    assert response.status_code == 404
    assert nettest.open_peer_count() == 0


@pytest.mark.django_db(transaction=True)
async def test_anonymous_is_sent_to_sign_in(visit, closes_peers):
    response = await post_offer(AsyncClient(), visit, "v=0\r\n")
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


@pytest.mark.django_db(transaction=True)
async def test_the_endpoint_takes_only_posts_with_the_csrf_token(cast, visit, closes_peers):
    client = await signed_in(cast.patient)
    assert (await client.get(endpoint(visit))).status_code == 405
    strict = await signed_in(cast.patient, enforce_csrf_checks=True)
    assert (await post_offer(strict, visit, "v=0\r\n")).status_code == 403


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps(["v=0"]),
        json.dumps({"offer": "v=0"}),
        json.dumps({"sdp": 42}),
        json.dumps({"sdp": "o=- 1 2 IN IP4 127.0.0.1"}),
        json.dumps({"sdp": "v=0\r\n" + "a=x\r\n" * 12_000}),
        json.dumps({"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}),
    ],
)
async def test_a_malformed_offer_is_refused(cast, visit, body, closes_peers):
    client = await signed_in(cast.patient)
    response = await client.post(endpoint(visit), body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["error"]
    assert nettest.open_peer_count() == 0


@pytest.mark.django_db(transaction=True)
async def test_a_busy_server_says_so(cast, visit, settings, closes_peers):
    settings.NETTEST_MAX_PEERS = 1
    other = Browser()
    await nettest.nettest_answer(
        user_id=cast.other_patient.user_id, offer_sdp=await other.offer(), ice_servers=[]
    )
    client = await signed_in(cast.patient)
    response = await post_offer(client, visit, await Browser().offer())
    assert response.status_code == 503
    assert response.json()["code"] == "busy"
    assert "try again in a minute" in response.json()["error"]
    await other.close()


# --- the page ----------------------------------------------------------------------------


def test_the_room_page_offers_the_test(client, login, cast, visit):
    login(cast.patient)
    response = client.get(reverse("visit_room", args=[visit.pk]))
    html = response.content.decode()
    assert '<details class="nettest" id="nettest">' in html
    assert "Test my connection" in html
    assert response.context["config"]["connectionTestPath"] == endpoint(visit)
    strings = html.split('<script id="nettest-strings" type="application/json">')[1]
    strings = json.loads(strings.split("</script>")[0])
    assert strings["good"].startswith("Good")
    assert strings["mbps"] == "%(value)s Mbit/s"
