"""Shared asyncio plumbing for the servers: listeners, TLS contexts, connection bookkeeping. Imports config."""
