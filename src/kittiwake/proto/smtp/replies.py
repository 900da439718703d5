"""SMTP replies: code, RFC 3463 enhanced status code, text; serialisation and named constants.

RFC 2034 §3: every 2xx/4xx/5xx reply carries an enhanced status code once ENHANCEDSTATUSCODES is
advertised, except the greeting and the replies to HELO/EHLO. Those constants have ``enhanced=None``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """One SMTP reply. ``text`` may hold several lines separated by ``\\n`` (a multi-line reply)."""

    code: int
    enhanced: str | None
    text: str

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @property
    def is_positive(self) -> bool:
        return 200 <= self.code < 400

    def serialize(self) -> bytes:
        """Render the reply; RFC 5321 §4.2.1: ``ddd-text`` on every line but the last, ``ddd text`` on it."""
        lines = self.lines
        prefix = f"{self.enhanced} " if self.enhanced else ""
        out = [
            f"{self.code}{'-' if i < len(lines) - 1 else ' '}{prefix}{line}\r\n"
            for i, line in enumerate(lines)
        ]
        return "".join(out).encode("utf-8")


def greeting_reply(hostname: str) -> Reply:
    """RFC 5321 §4.3.1: the 220 greeting starts with the server's name."""
    return Reply(code=220, enhanced=None, text=f"{hostname} ESMTP")


# RFC 5321 §3.1: a server refusing service at connection time answers 554 and then waits for QUIT.
NO_SERVICE_554 = Reply(code=554, enhanced=None, text="No SMTP service here")

OK_250 = Reply(code=250, enhanced="2.0.0", text="OK")
RESET_250 = Reply(code=250, enhanced="2.0.0", text="Reset state")
SENDER_OK_250 = Reply(code=250, enhanced="2.1.0", text="Sender OK")
RECIPIENT_OK_250 = Reply(code=250, enhanced="2.1.5", text="Recipient OK")
MESSAGE_ACCEPTED_250 = Reply(code=250, enhanced="2.0.0", text="Message accepted")
HELP_214 = Reply(code=214, enhanced="2.0.0", text="See RFC 5321")
CLOSING_221 = Reply(code=221, enhanced="2.0.0", text="Bye")
READY_FOR_TLS_220 = Reply(code=220, enhanced="2.0.0", text="Ready to start TLS")
AUTH_SUCCEEDED_235 = Reply(code=235, enhanced="2.7.0", text="Authentication succeeded")
CANNOT_VRFY_252 = Reply(code=252, enhanced="2.5.0", text="Cannot VRFY user, but will accept message")
START_DATA_354 = Reply(code=354, enhanced=None, text="End data with <CR><LF>.<CR><LF>")

TOO_MANY_ERRORS_421 = Reply(code=421, enhanced="4.7.0", text="Too many errors, closing connection")
SHUTTING_DOWN_421 = Reply(code=421, enhanced="4.3.2", text="Service shutting down, closing connection")
LOCAL_ERROR_451 = Reply(code=451, enhanced="4.3.0", text="Local error in processing")
TOO_MANY_RECIPIENTS_452 = Reply(code=452, enhanced="4.5.3", text="Too many recipients")
TLS_NOT_AVAILABLE_454 = Reply(code=454, enhanced="4.7.0", text="TLS not available")

UNKNOWN_COMMAND_500 = Reply(code=500, enhanced="5.5.1", text="Command unrecognized")
LINE_TOO_LONG_500 = Reply(code=500, enhanced="5.5.2", text="Line too long")
BARE_LINE_ENDING_500 = Reply(code=500, enhanced="5.5.2", text="Bare CR or LF not allowed")
SYNTAX_ERROR_501 = Reply(code=501, enhanced="5.5.2", text="Syntax error in parameters or arguments")
INVALID_PARAMETER_501 = Reply(code=501, enhanced="5.5.4", text="Invalid parameter value")
AUTH_CANCELLED_501 = Reply(code=501, enhanced="5.0.0", text="Authentication cancelled")
NOT_IMPLEMENTED_502 = Reply(code=502, enhanced="5.5.1", text="Command not implemented")
BAD_SEQUENCE_503 = Reply(code=503, enhanced="5.5.1", text="Bad sequence of commands")
UNKNOWN_MECHANISM_504 = Reply(code=504, enhanced="5.5.4", text="Unrecognized authentication type")
AUTH_REQUIRED_530 = Reply(code=530, enhanced="5.7.0", text="Authentication required")
AUTH_FAILED_535 = Reply(code=535, enhanced="5.7.8", text="Authentication credentials invalid")
ENCRYPTION_REQUIRED_538 = Reply(
    code=538, enhanced="5.7.11", text="Encryption required for requested authentication mechanism"
)
MESSAGE_TOO_BIG_552 = Reply(
    code=552, enhanced="5.3.4", text="Message size exceeds fixed maximum message size"
)
NON_ASCII_ADDRESS_553 = Reply(code=553, enhanced="5.6.7", text="Non-ASCII address requires SMTPUTF8")
TRANSACTION_FAILED_554 = Reply(code=554, enhanced="5.5.0", text="Transaction failed")
UNKNOWN_PARAMETER_555 = Reply(code=555, enhanced="5.5.4", text="Parameter not recognized or not implemented")


def bad_sequence(text: str) -> Reply:
    """503 5.5.1 with a specific explanation (RFC 5321 §4.2.4 lets the text vary)."""
    return Reply(code=503, enhanced="5.5.1", text=text)


def syntax_error(text: str) -> Reply:
    return Reply(code=501, enhanced="5.5.2", text=text)
