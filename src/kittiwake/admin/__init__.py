"""Administrative operations as plain async functions: domains, users, aliases, keys, DNS records.

May import store, auth, mail, config. The command line calls these; so can tests.
"""
