"""SMTP service (ports 25, 587, 465). Imports proto.smtp, proto.sasl, delivery, auth, net."""
