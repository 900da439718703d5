"""How a serving process sets Python's cyclic garbage collector.

CPython's defaults collect the youngest generation after every 700 net allocations and walk the whole heap
after every hundred of those collections. A mail server allocates a few thousand short-lived objects per
message or command and keeps a large heap for life: modules, caches, TLS contexts, connections. With the
defaults, port 25 spent about a fifth of its time in the collector, mostly re-walking objects that can never
become garbage. So, as long-running Python services commonly do:

- what exists once the listeners are up is frozen (moved to a generation the collector never walks), and
- the youngest generation is collected every YOUNG_THRESHOLD allocations, which still frees reference
  cycles (a caught exception and its traceback, for one) within a few hundred messages.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 100


def tune_for_serving() -> None:
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


def freeze_startup() -> None:
    """Collect what start-up left behind, then keep the collector off everything that remains."""
    gc.collect()
    gc.freeze()
