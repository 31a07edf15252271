"""control_gc: the heap frozen, only the youngest generation collected automatically inside the block, everything restored after."""

from __future__ import annotations

import gc

from vla_kit.safety import control_gc


def test_the_block_freezes_the_heap_and_collects_only_the_youngest_generation_then_restores_the_collector():
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    with control_gc() as g:
        assert gc.get_freeze_count() > frozen
        gen0, gen1, gen2 = gc.get_threshold()
        assert gen0 == before[0] and gen1 >= 2**31 - 1 and gen2 >= 2**31 - 1
        young, middle, full = (gc.get_stats()[k]["collections"] for k in range(3))
        junk = []
        for _ in range(200_000):  # plenty of surviving containers: older collections would normally start
            junk.append([1])
        assert gc.get_stats()[0]["collections"] > young  # the youngest generation: short, bounded pauses
        assert gc.get_stats()[1]["collections"] == middle and gc.get_stats()[2]["collections"] == full
        with control_gc():  # nested: the outer block keeps the settings
            assert gc.get_threshold()[2] >= 2**31 - 1
        assert gc.get_threshold()[2] >= 2**31 - 1
        cycle = []
        cycle.append(cycle)
        del cycle
        assert g.collect() >= 1  # an explicit collection still runs, and frees the cycle
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen


def test_the_collector_is_restored_when_the_loop_raises():
    before = gc.get_threshold()
    try:
        with control_gc():
            raise RuntimeError("the loop failed")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_idle_moves_the_youngest_collection_out_of_the_cycle():
    """A loop that calls idle() in its slack never has an automatic collection inside the cycle:
    ~30 surviving containers per cycle (what a clamped cycle logs) over 2000 cycles."""
    log = []
    with control_gc() as g:
        inside = collected = 0
        for _ in range(2000):
            before = gc.get_stats()[0]["collections"]
            log.extend([i] for i in range(30))  # the cycle's work: containers that survive
            inside += gc.get_stats()[0]["collections"] - before
            collected += g.idle()
        assert inside == 0 and collected >= 2000 * 30 // gc.get_threshold()[0]
