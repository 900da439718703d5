import gc
import weakref
from collections.abc import Iterator

import pytest

from kittiwake import collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.disable()  # no automatic collection in the middle of a test
    yield
    gc.enable()
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_serving_thresholds_collect_the_young_generation_less_often(restored_collector: None) -> None:
    collector.tune_for_serving()
    assert gc.get_threshold() == (
        collector.YOUNG_THRESHOLD,
        collector.MIDDLE_THRESHOLD,
        collector.OLD_THRESHOLD,
    )
    assert collector.YOUNG_THRESHOLD > 700


def test_freeze_startup_collects_garbage_then_hides_what_remains(restored_collector: None) -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    garbage = weakref.ref(Node())  # an unreachable cycle: only the collector frees it
    kept = Node()
    assert garbage() is not None
    collector.freeze_startup()
    assert garbage() is None
    assert gc.get_freeze_count() > 0
    assert all(o is not kept for o in gc.get_objects())  # frozen: out of the collector's sight
