"""Keep CPython's garbage collector out of the control loop.

A full (generation-2) collection walks every container object in the process. With numpy,
numba, pydantic and a policy loaded that is a few million objects, and the pause — measured in
``benchmarks/safety_filter.py`` — is 60–70 ms: seventy missed cycles at 1 kHz, long enough for a
robot controller's own watchdog to stop the arm. The collector starts one whenever the
long-lived objects have grown by a quarter, which a control loop does steadily (the layer keeps
its intervention log).

:func:`control_gc` is the usual remedy for Python control loops: collect once, **freeze** what
exists (the interpreter, the libraries, the models: never scanned again), and leave only the
youngest generation to automatic collection: it holds at most a few hundred new objects, so its
pauses are tens of microseconds. The middle generation is not collected automatically either:
what survives there is mostly the layer's log, and a collection of it every few hundred clamped
cycles cost 300 µs (measured). Cyclic garbage that survives the youngest generation waits for
:meth:`ControlGC.collect`, which a loop calls where a pause does no harm (the arm at rest,
between episodes), or for the end of the block, which restores the collector as it was.

The youngest generation still costs something: the layer keeps every intervention in its log,
so a clamped cycle leaves ~30 new containers behind, and the automatic collection of the 700
youngest objects (~27 µs on the 2-core dev machine) lands inside every ~20th ``filter`` call —
too often to stay out of the 99th percentile. :meth:`ControlGC.idle`, called in the cycle's
slack (after the command is sent, before waiting for the next tick), runs that collection there
once it is half due, so it never falls inside a decision.
"""

from __future__ import annotations

import gc
from types import TracebackType

__all__ = ["ControlGC", "control_gc"]

_NEVER = 2**31 - 1  # a threshold no loop reaches


class ControlGC:
    """Context manager: youngest-generation collection only, the heap frozen at entry.

    Re-entrant use is harmless: an inner block leaves the settings to the outer one.
    """

    _depth = 0

    def __init__(self) -> None:
        self._threshold: tuple[int, int, int] | None = None
        self._owner = False

    def __enter__(self) -> "ControlGC":
        ControlGC._depth += 1
        self._owner = ControlGC._depth == 1
        if self._owner:
            gc.collect()
            gc.freeze()
            self._threshold = gc.get_threshold()
            gc.set_threshold(self._threshold[0], _NEVER, _NEVER)
        return self

    def idle(self) -> bool:
        """Call once per cycle in its slack (after the command is sent): collect the youngest
        generation now when it is at least half way to its automatic threshold, so the automatic
        collection does not run inside the next decision. Returns whether it collected."""
        if gc.get_count()[0] * 2 >= gc.get_threshold()[0]:
            gc.collect(0)
            return True
        return False

    def collect(self) -> int:
        """A full collection now (at a point where a pause is harmless); returns what it freed."""
        return gc.collect()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        ControlGC._depth -= 1
        if self._owner and self._threshold is not None:
            gc.set_threshold(*self._threshold)
            gc.unfreeze()
            self._threshold = None


def control_gc() -> ControlGC:
    """``with control_gc() as g: ...`` — run a control loop without full-heap collector pauses."""
    return ControlGC()
