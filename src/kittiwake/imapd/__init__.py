"""IMAP service (ports 143, 993). Imports proto.imap, proto.sasl, store, delivery, auth, net."""
