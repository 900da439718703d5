"""Message authentication: SPF, DKIM, DMARC, ARC.

Record parsing is pure; checks take a Resolver. May import mail and resolver.
"""
