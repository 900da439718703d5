"""kittiwake: a complete email server (SMTP, IMAP, outbound queue) in one program."""

__version__ = "0.1.0"
