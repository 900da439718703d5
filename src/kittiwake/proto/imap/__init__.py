"""IMAP protocol core (RFC 9051, RFC 3501 and extensions): framing, parser, responses. Imports kittiwake.mail only."""
