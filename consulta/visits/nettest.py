"""The server's side of the waiting room's connection test: a WebRTC peer (aiortc) that
answers the browser's offer and serves the three data channels the browser opens.

- "probe" (unordered, no retransmissions): every message goes straight back, unchanged; the
  browser measures round-trip time, jitter and loss from the sequence numbers and times it
  wrote into them.
- "upload": the browser sends binary chunks; on the text "done" the server answers
  `{"bytes": N, "seconds": S}`, counted from the first to the last chunk it received.
- "download": on the text "start" the server sends 16 KiB chunks for two seconds, never more
  than about 1 MiB ahead of the network, then the text "done".

The peers live on the event loop of the process that answered the offer (uvicorn's) and hold
nothing but counters. Each one costs CPU on the loop that also serves pages and sockets, so a
peer is closed after `LIFETIME_SECONDS`, when the browser closes it, or when the same user
starts another test, and a process runs at most `NETTEST_MAX_PEERS` at once.

The server peer gets the same STUN and TURN servers as the page but always gathers every
kind of candidate: a browser held to relay-only still reaches it through TURN, which is the
path its calls take, and the server's own addresses are no secret.
"""

import asyncio
import json
import logging
from dataclasses import dataclass, field

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcdatachannel import RTCDataChannel
from django.conf import settings
from django.utils.translation import gettext as _

from consulta.lib.errors import DomainError

log = logging.getLogger("consulta.nettest")

CHUNK_BYTES = 16 * 1024
MAX_BYTES_AHEAD = 1024 * 1024
LIFETIME_SECONDS = 20.0
DOWNLOAD_SECONDS = 2.0


@dataclass(eq=False)
class _TestPeer:
    user_id: int
    pc: RTCPeerConnection
    download_seconds: float
    timer: asyncio.TimerHandle | None = None
    tasks: set[asyncio.Task] = field(default_factory=set)
    closed: bool = False


# One peer per user, in this process.
_peers: dict[int, _TestPeer] = {}
# Closing tasks started from callbacks: asyncio keeps only weak references to tasks.
_closing: set[asyncio.Task] = set()


def max_peers() -> int:
    return settings.NETTEST_MAX_PEERS


def open_peer_count() -> int:
    return len(_peers)


async def nettest_answer(
    *,
    user_id: int,
    offer_sdp: str,
    ice_servers: list[dict],
    lifetime: float = LIFETIME_SECONDS,
    download_seconds: float = DOWNLOAD_SECONDS,
) -> str:
    """Answer the browser's offer with a fresh server peer; return the answer SDP, with every
    candidate in it (aiortc gathers before it sets the local description)."""
    previous = _peers.pop(user_id, None)
    if previous is not None:
        await _close(previous)
    if len(_peers) >= max_peers():
        log.warning("connection test refused to user %s: %s peers open", user_id, len(_peers))
        raise DomainError(
            _(
                "Too many connection tests are running on the server right now. "
                "Please try again in a minute."
            ),
            code="busy",
        )
    if "m=application" not in offer_sdp:
        raise DomainError(_invalid_offer_message(), code="invalid")

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[_ice_server(s) for s in ice_servers]))
    peer = _TestPeer(user_id=user_id, pc=pc, download_seconds=download_seconds)
    # Registered before the first await, so that concurrent offers count it.
    _peers[user_id] = peer
    peer.timer = asyncio.get_running_loop().call_later(lifetime, _close_soon, peer)
    pc.on("datachannel", lambda channel: _serve(peer, channel))

    @pc.on("connectionstatechange")
    def _on_state() -> None:
        if pc.connectionState in ("failed", "closed"):
            _close_soon(peer)

    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as error:  # aiortc raises ValueError, KeyError, ... on SDPs it cannot use
        # Closed under us because the same user sent a newer offer meanwhile?
        replaced = peer.closed and _peers.get(user_id) not in (None, peer)
        await _close(peer)
        if replaced:
            raise DomainError(_("Another connection test was started."), code="replaced") from None
        log.info("connection test offer of user %s refused: %r", user_id, error)
        raise DomainError(_invalid_offer_message(), code="invalid") from None
    log.info("connection test started for user %s (%s open)", user_id, len(_peers))
    return pc.localDescription.sdp


async def nettest_close(*, user_id: int) -> None:
    peer = _peers.get(user_id)
    if peer is not None:
        await _close(peer)


async def nettest_close_all() -> None:
    """Close every peer of this process (tests; a process shutting down)."""
    for peer in list(_peers.values()):
        await _close(peer)
    if _closing:
        await asyncio.gather(*_closing, return_exceptions=True)


def _invalid_offer_message() -> str:
    return _("The browser’s connection offer could not be read. Reload the page and try again.")


def _ice_server(server: dict) -> RTCIceServer:
    return RTCIceServer(
        urls=server["urls"],
        username=server.get("username"),
        credential=server.get("credential"),
    )


def _close_soon(peer: _TestPeer) -> None:
    if peer.closed:
        return
    task = asyncio.ensure_future(_close(peer))
    _closing.add(task)
    task.add_done_callback(_closing.discard)


async def _close(peer: _TestPeer) -> None:
    if peer.closed:
        return
    peer.closed = True
    if _peers.get(peer.user_id) is peer:
        del _peers[peer.user_id]
    if peer.timer is not None:
        peer.timer.cancel()
    for task in list(peer.tasks):
        task.cancel()
    await peer.pc.close()
    log.debug("connection test closed for user %s", peer.user_id)


def _serve(peer: _TestPeer, channel: RTCDataChannel) -> None:
    if channel.label == "probe":
        channel.on("message", lambda message: _echo(channel, message))
    elif channel.label == "upload":
        _count_upload(channel)
    elif channel.label == "download":
        channel.on("message", lambda message: _start_download(peer, channel, message))
    else:
        channel.close()  # nothing else is served
        return
    # The browser closed the channel (or the whole connection): the test is over.
    channel.on("close", lambda: _close_soon(peer))


def _echo(channel: RTCDataChannel, message: str | bytes) -> None:
    if channel.readyState == "open":
        channel.send(message)


def _count_upload(channel: RTCDataChannel) -> None:
    loop = asyncio.get_running_loop()
    received = {"bytes": 0, "first": None, "last": None}

    @channel.on("message")
    def _on_message(message: str | bytes) -> None:
        if isinstance(message, bytes):
            now = loop.time()
            if received["first"] is None:
                received["first"] = now
            received["last"] = now
            received["bytes"] += len(message)
        elif message == "done" and channel.readyState == "open":
            first, last = received["first"], received["last"]
            seconds = (last - first) if first is not None else 0.0
            channel.send(json.dumps({"bytes": received["bytes"], "seconds": round(seconds, 6)}))


def _start_download(peer: _TestPeer, channel: RTCDataChannel, message: str | bytes) -> None:
    if message != "start" or peer.tasks:
        return  # one stream per test
    task = asyncio.ensure_future(_stream(channel, peer.download_seconds))
    peer.tasks.add(task)


async def _stream(channel: RTCDataChannel, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    chunk = bytes(CHUNK_BYTES)
    drained = asyncio.Event()
    channel.bufferedAmountLowThreshold = MAX_BYTES_AHEAD // 2
    channel.on("bufferedamountlow", drained.set)
    deadline = loop.time() + seconds
    try:
        while channel.readyState == "open" and (left := deadline - loop.time()) > 0:
            if channel.bufferedAmount >= MAX_BYTES_AHEAD:
                # The network is slower than we queue: wait until half the queue has gone.
                drained.clear()
                try:
                    await asyncio.wait_for(drained.wait(), timeout=left)
                except TimeoutError:
                    break
                continue
            channel.send(chunk)
            await asyncio.sleep(0)  # let the transport flush between chunks
        if channel.readyState == "open":
            channel.send("done")
    finally:
        channel.remove_listener("bufferedamountlow", drained.set)
