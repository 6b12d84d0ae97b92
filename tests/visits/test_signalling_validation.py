"""parse_message: what a browser may send on the visit socket, and what it is reduced to."""

import json

import pytest
from django.utils import translation

from consulta.lib.errors import DomainError
from consulta.visits.signalling import (
    MAX_CANDIDATE_CHARS,
    MAX_SDP_CHARS,
    RELAYED,
    SENDERS,
    parse_message,
)

LIMIT = 65536
SDP = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = "candidate:842163049 1 udp 1677729535 192.0.2.10 3478 typ srflx"


def parse(payload, max_bytes=LIMIT):
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return parse_message(text, max_bytes)


def refusal(payload, max_bytes=LIMIT) -> DomainError:
    with pytest.raises(DomainError) as caught:
        parse(payload, max_bytes)
    return caught.value


# --- valid messages --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["offer", "answer"])
def test_offer_and_answer_keep_only_type_and_sdp(kind):
    assert parse({"type": kind, "sdp": SDP}) == {"type": kind, "sdp": SDP}


def test_ice_candidate_is_kept_with_its_three_fields():
    message = {
        "type": "ice",
        "candidate": {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0},
    }
    assert parse(message) == message


def test_ice_candidate_may_leave_mid_and_index_empty():
    message = {"type": "ice", "candidate": {"candidate": CANDIDATE}}
    assert parse(message) == {
        "type": "ice",
        "candidate": {"candidate": CANDIDATE, "sdpMid": None, "sdpMLineIndex": None},
    }


def test_ice_with_a_null_candidate_means_end_of_candidates():
    assert parse({"type": "ice", "candidate": None}) == {"type": "ice", "candidate": None}


def test_ice_without_a_candidate_key_is_also_end_of_candidates():
    assert parse({"type": "ice"}) == {"type": "ice", "candidate": None}


def test_media_keeps_the_two_booleans():
    assert parse({"type": "media", "audio": False, "video": True}) == {
        "type": "media",
        "audio": False,
        "video": True,
    }


@pytest.mark.parametrize("kind", ["ping", "ready", "admit", "end"])
def test_bare_messages_are_reduced_to_their_type(kind):
    assert parse({"type": kind, "extra": "dropped", "sdp": SDP}) == {"type": kind}


def test_extra_fields_are_dropped_from_offers():
    parsed = parse({"type": "offer", "sdp": SDP, "html": "<script>", "from": "d1"})
    assert parsed == {"type": "offer", "sdp": SDP}


def test_a_relayed_message_may_name_its_recipient():
    parsed = parse({"type": "offer", "sdp": SDP, "to": "p7"})
    assert parsed == {"type": "offer", "sdp": SDP, "to": "p7"}


@pytest.mark.parametrize("to", ["", 7, True, "x" * 65, ["p7"]])
def test_a_recipient_that_is_not_a_peer_is_malformed(to):
    with pytest.raises(DomainError) as refusal:
        parse({"type": "ice", "candidate": None, "to": to})
    assert refusal.value.code == "malformed"


def test_extra_fields_are_dropped_from_candidates():
    parsed = parse(
        {
            "type": "ice",
            "from": "doctor",
            "candidate": {
                "candidate": CANDIDATE,
                "sdpMid": "0",
                "sdpMLineIndex": 1,
                "usernameFragment": "abc",
                "evil": {"nested": True},
            },
        }
    )
    assert parsed == {
        "type": "ice",
        "candidate": {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 1},
    }


def test_extra_fields_are_dropped_from_media():
    parsed = parse({"type": "media", "audio": True, "video": True, "screen": True})
    assert parsed == {"type": "media", "audio": True, "video": True}


def test_a_message_exactly_at_the_limit_is_accepted():
    text = json.dumps({"type": "ping", "pad": ""})
    text = text[:-2] + "x" * (LIMIT - len(text)) + '"}'
    assert len(text.encode()) == LIMIT
    assert parse_message(text, LIMIT) == {"type": "ping"}


def test_every_relayed_type_can_be_sent_by_someone():
    assert set(SENDERS) >= RELAYED
    assert SENDERS["offer"] == {"doctor", "clinician"}
    assert SENDERS["answer"] == {"doctor", "clinician", "patient"}
    assert SENDERS["admit"] == {"doctor"}
    assert SENDERS["end"] == {"doctor"}
    assert SENDERS["ready"] == {"patient"}


# --- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sdp",
    [
        "o=- 1 2 IN IP4 127.0.0.1\r\nv=0\r\n",
        " v=0\r\n",
        "",
        None,
        42,
        ["v=0"],
        {"sdp": "v=0"},
    ],
)
@pytest.mark.parametrize("kind", ["offer", "answer"])
def test_sdp_that_is_not_a_session_description_is_refused(kind, sdp):
    payload = {"type": kind} if sdp is None else {"type": kind, "sdp": sdp}
    assert refusal(payload).code == "malformed"


def test_sdp_longer_than_the_maximum_is_refused():
    sdp = "v=0" + "a" * (MAX_SDP_CHARS - 2)
    assert len(sdp) == MAX_SDP_CHARS + 1
    assert refusal({"type": "offer", "sdp": sdp}, max_bytes=10 * MAX_SDP_CHARS).code == "malformed"


def test_sdp_at_the_maximum_length_is_accepted():
    sdp = "v=0" + "a" * (MAX_SDP_CHARS - 3)
    assert parse({"type": "answer", "sdp": sdp}, max_bytes=10 * MAX_SDP_CHARS)["sdp"] == sdp


@pytest.mark.parametrize(
    "candidate",
    [
        "candidate:1 1 udp 1 192.0.2.1 1 typ host",  # a bare string, not an object
        ["candidate:1"],
        42,
        True,
        {},
        {"candidate": None},
        {"candidate": 42},
        {"candidate": ["candidate:1"]},
        {"candidate": CANDIDATE, "sdpMid": 0},
        {"candidate": CANDIDATE, "sdpMid": ["0"]},
        {"candidate": CANDIDATE, "sdpMid": "m" * 65},
        {"candidate": CANDIDATE, "sdpMLineIndex": "0"},
        {"candidate": CANDIDATE, "sdpMLineIndex": 0.5},
        {"candidate": "c" * (MAX_CANDIDATE_CHARS + 1)},
    ],
)
def test_candidate_of_the_wrong_shape_is_refused(candidate):
    assert refusal({"type": "ice", "candidate": candidate}).code == "malformed"


@pytest.mark.parametrize("index", [-1, 64, 1000])
def test_sdp_mline_index_out_of_range_is_refused(index):
    message = {"type": "ice", "candidate": {"candidate": CANDIDATE, "sdpMLineIndex": index}}
    assert refusal(message).code == "malformed"


@pytest.mark.parametrize("index", [0, 63])
def test_sdp_mline_index_at_the_ends_of_the_range_is_accepted(index):
    message = {"type": "ice", "candidate": {"candidate": CANDIDATE, "sdpMLineIndex": index}}
    assert parse(message)["candidate"]["sdpMLineIndex"] == index


@pytest.mark.parametrize("index", [True, False])
def test_sdp_mline_index_that_is_a_boolean_is_refused(index):
    # JSON true/false are not line indexes, even though Python's bool is an int.
    message = {"type": "ice", "candidate": {"candidate": CANDIDATE, "sdpMLineIndex": index}}
    assert refusal(message).code == "malformed"


def test_candidate_at_the_maximum_length_is_accepted():
    text = "c" * MAX_CANDIDATE_CHARS
    assert (
        parse({"type": "ice", "candidate": {"candidate": text}})["candidate"]["candidate"] == text
    )


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "media"},
        {"type": "media", "audio": True},
        {"type": "media", "audio": 1, "video": 0},
        {"type": "media", "audio": "true", "video": "false"},
        {"type": "media", "audio": None, "video": True},
    ],
)
def test_media_without_two_booleans_is_refused(payload):
    assert refusal(payload).code == "malformed"


@pytest.mark.parametrize("text", ["", "{", "not json", "{'type': 'ping'}", '{"type": "ping"'])
def test_text_that_is_not_json_is_malformed(text):
    assert refusal(text).code == "malformed"


@pytest.mark.parametrize("text", ["[]", '["ping"]', '"ping"', "42", "null", "true"])
def test_json_that_is_not_an_object_is_malformed(text):
    assert refusal(text).code == "malformed"


@pytest.mark.parametrize("payload", [{}, {"sdp": SDP}, {"type": None}, {"type": 1}, {"type": []}])
def test_message_without_a_string_type_is_malformed(payload):
    assert refusal(payload).code == "malformed"


@pytest.mark.parametrize("kind", ["hello", "state", "error", "presence", "OFFER", "peer.relay", ""])
def test_unknown_type_is_refused(kind):
    assert refusal({"type": kind}).code == "unknown_type"


def test_deeply_nested_json_is_malformed_not_a_crash():
    # Well under the byte limit, but deeper than Python's recursion limit: the JSON
    # decoder raises RecursionError (not a ValueError), which must not escape.
    text = "[" * 5000 + "]" * 5000
    assert len(text.encode()) < LIMIT
    assert refusal(text).code == "malformed"


def test_message_over_the_byte_limit_is_too_large():
    text = json.dumps({"type": "ping", "pad": "x" * 200})
    assert refusal(text, max_bytes=len(text.encode()) - 1).code == "too_large"


def test_size_is_counted_in_bytes_not_characters():
    text = json.dumps({"type": "ping", "pad": "é" * 100}, ensure_ascii=False)
    assert len(text) < 150 < len(text.encode())
    assert refusal(text, max_bytes=150).code == "too_large"


def test_size_is_checked_before_the_json_is_read():
    assert refusal("{" * 200, max_bytes=100).code == "too_large"


def test_binary_frame_is_refused():
    with pytest.raises(DomainError) as caught:
        parse_message(None, LIMIT)
    assert caught.value.code == "binary"


# --- translated messages ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (None, "binary"),
        ("x" * 200, "too_large"),
        ("not json", "malformed"),
        ("[]", "malformed"),
        ('{"type": "nope"}', "unknown_type"),
        ('{"type": "offer", "sdp": "nope"}', "malformed"),
        ('{"type": "ice", "candidate": 1}', "malformed"),
        ('{"type": "media"}', "malformed"),
    ],
)
def test_refusal_messages_are_readable_in_the_active_language(text, code):
    with translation.override("it"):
        with pytest.raises(DomainError) as caught:
            parse_message(text, 100)
        message = str(caught.value.message)
    assert caught.value.code == code
    assert isinstance(caught.value.message, str)
    assert message.strip()
