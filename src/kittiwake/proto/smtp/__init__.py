"""SMTP protocol core (RFC 5321 and extensions), server and client sides. Imports kittiwake.mail only."""
