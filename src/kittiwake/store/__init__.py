"""Persistence: accounts, mailboxes, messages, the queue. The only package that speaks SQL.

May import kittiwake.mail and kittiwake.config. Callers use the Protocols in interface.py, blobs.py and
changes.py; the concrete stores live in store.sqlite (embedded default) and store.postgres.
"""
