"""Keep PyBullet's C-level banners ("pybullet build time", "argv[0]=") off the user's terminal.

They are printed by C code straight to file descriptors 1 and 2, so Python's ``redirect_stdout``
cannot catch them; in a Jupyter kernel they would land in the executed notebook and the report.
Python exceptions raised inside the block still propagate (and print) normally afterwards.
"""

from __future__ import annotations

import ctypes
import os
import sys
from contextlib import contextmanager
from typing import Iterator

__all__ = ["quiet_c_stdout"]


@contextmanager
def quiet_c_stdout() -> Iterator[None]:
    """Send whatever C code prints to fd 1 and fd 2 inside the block to /dev/null."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError):
            pass
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no fd 1 / 2 (embedded interpreters): nothing to protect
        yield
        return
    libc = ctypes.CDLL(None)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                libc.fflush(None)  # C stdio buffers: drain them into /dev/null, not later onto the terminal
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
