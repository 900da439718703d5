"""Organizational domains (RFC 7489 §3.2), found with the Public Suffix List.

The list is the copy shipped inside the `publicsuffixlist` package, read from disk once on first use; nothing
is fetched over the network. A newer list arrives by upgrading that package.
"""

from __future__ import annotations

import functools

from publicsuffixlist import PublicSuffixList


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    # Both the ICANN and the private sections count: a suffix such as a hosting provider's is where
    # independent owners start, which is what DMARC alignment needs to tell apart.
    return PublicSuffixList()


# DMARC asks for the organizational domains of the same few names (the From domain, the SPF and DKIM
# domains) on every message from a sender; the list is fixed for the life of the process, so an answer
# never goes stale. Bounded, as the names come from the messages.
@functools.lru_cache(maxsize=4096)
def organizational_domain(domain: str) -> str:
    """The organizational domain of `domain`, lower case, without a trailing dot.

    RFC 7489 §3.2: the longest public suffix that matches, plus one more label. A name that is itself a
    public suffix (or a single unknown label) has no label to add and is its own organizational domain.
    """
    name = domain.rstrip(".").lower()
    if not name:
        return name
    private = _public_suffixes().privatesuffix(name)
    return private if private is not None else name


def is_public_suffix(domain: str) -> bool:
    """Whether `domain` is a public suffix itself, such as "com" or "co.uk"."""
    name = domain.rstrip(".").lower()
    return bool(name) and _public_suffixes().publicsuffix(name) == name
