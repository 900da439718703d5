"""The two error kinds of the SMTP core: the peer's (answered on the wire) and ours (raised)."""

from __future__ import annotations

from kittiwake.proto.smtp.replies import Reply


class ProtocolError(Exception):
    """Misuse of the core's API by our own code, e.g. send_reply() when no reply is pending.

    Raised only for our mistakes; a peer's protocol errors are answered on the wire and never raised
    out of receive_data().
    """


class CommandError(Exception):
    """A peer's malformed or unacceptable command; carries the reply the core sends for it."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.text)
        self.reply = reply
