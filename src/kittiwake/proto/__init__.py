"""Sans-I/O protocol cores: bytes in, events and bytes out. Never async; no I/O."""
