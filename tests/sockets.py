"""Sockets in tests, through the whole ASGI stack (origin check, session authentication,
routing, the consumers, the channel layer): a communicator with JSON shortcuts, and an opener
that signs the socket in as someone and disconnects every socket it opened at the end.

    @pytest.fixture
    async def connect():
        async with socket_opener() as open_socket:
            yield open_socket      # in a test: sock = await connect(cast.doctor, path)
"""

import json
from contextlib import asynccontextmanager

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from consulta.asgi import application

TIMEOUT = 3
ORIGIN = b"http://127.0.0.1"
SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = {
    "candidate": "candidate:842163049 1 udp 1677729535 192.0.2.10 3478 typ srflx",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}


def session_key(who) -> str:
    """A signed-in session for `who` (a StaffMember, a Patient or a User)."""
    user = getattr(who, "user", who)
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client.cookies[settings.SESSION_COOKIE_NAME].value


class Socket:
    """A WebsocketCommunicator with JSON shortcuts and modest timeouts."""

    def __init__(self, communicator, connected, code):
        self.communicator = communicator
        self.connected = connected
        self.code = code

    async def send(self, payload) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout=TIMEOUT) -> dict:
        return json.loads(await self.communicator.receive_from(timeout=timeout))

    async def receive_many(self, count: int) -> list[dict]:
        return [await self.receive() for _ in range(count)]

    async def receive_type(self, kind, timeout=TIMEOUT) -> dict:
        """The next message of this type, skipping others (presence of third parties)."""
        while True:
            message = await self.receive(timeout)
            if message["type"] == kind:
                return message

    async def receive_close(self) -> dict:
        """The close, which must come next: no message before it."""
        output = await self.communicator.receive_output(timeout=TIMEOUT)
        assert output["type"] == "websocket.close", output
        return output

    async def nothing(self, timeout=0.3) -> bool:
        return await self.communicator.receive_nothing(timeout=timeout)

    async def close(self, code=1000) -> None:
        await self.communicator.disconnect(code=code, timeout=TIMEOUT)


@asynccontextmanager
async def socket_opener(make=Socket):
    """`await open_socket(who, path)` opens a socket as `who` (None: anonymous), with the
    language cookie when `language` is given; `make` builds the test's socket from
    (communicator, connected, code, **extra)."""
    opened: list[WebsocketCommunicator] = []

    async def open_socket(who, path, /, *, origin=ORIGIN, language=None, **extra):
        headers = [(b"host", b"127.0.0.1")]
        if origin is not None:  # None: a client that sends no Origin header
            headers.append((b"origin", origin))
        cookies = []
        if who is not None:
            key = await database_sync_to_async(session_key)(who)
            cookies.append(f"{settings.SESSION_COOKIE_NAME}={key}")
        if language is not None:  # the language picked in this browser
            cookies.append(f"{settings.LANGUAGE_COOKIE_NAME}={language}")
        if cookies:
            headers.append((b"cookie", "; ".join(cookies).encode()))
        communicator = WebsocketCommunicator(application, path, headers=headers)
        opened.append(communicator)
        connected, code = await communicator.connect(timeout=TIMEOUT)
        return make(communicator, connected, code, **extra)

    try:
        yield open_socket
    finally:
        for communicator in opened:
            if communicator.future.done():  # already finished, or crashed in front of the test
                continue
            await communicator.disconnect(timeout=TIMEOUT)
