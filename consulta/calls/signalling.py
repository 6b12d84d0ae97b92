"""Validation of the messages a browser sends on the call socket (docs/internal-calls.md).
The WebRTC messages have the visit socket's shapes, and are checked by the visit socket's
own validation; `hangup` is the calls' own."""

from typing import Any

from consulta.visits import signalling as visit_signalling

EITHER = frozenset({"caller", "callee"})
# type -> sides allowed to send it: the caller makes the offers, the callee answers.
SENDERS: dict[str, frozenset[str]] = {
    "offer": frozenset({"caller"}),
    "answer": frozenset({"callee"}),
    "ice": EITHER,
    "media": EITHER,
    "ping": EITHER,
    "hangup": EITHER,
}
RELAYED = visit_signalling.RELAYED


def parse_message(text: str | None, max_bytes: int) -> dict[str, Any]:
    cleaned = visit_signalling.parse_message(text, max_bytes, SENDERS)
    cleaned.pop("to", None)  # a call has one other person: nothing to address
    return cleaned
