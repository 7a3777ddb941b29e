"""Process-level tuning for CPU inference.

The decoder allocates and frees tensors of 10-30 MB per layer. glibc returns such blocks to
the OS right away (mmap / trim), so every layer pays page faults to get zeroed pages back:
measured at 40% of the decoder's time on 1 thread. Raising the mmap and trim thresholds lets
freed blocks be reused from the heap. The cost is that the process keeps its peak heap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def tune_allocator() -> bool:
    """Keep large freed blocks in the heap (glibc only; idempotent). False if not applied.

    `Voice.load(tune_malloc=False)` leaves the allocator alone.
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl has no mallopt)
    ok = bool(mallopt(_M_MMAP_THRESHOLD, 256 * 1024 * 1024)) and bool(mallopt(_M_TRIM_THRESHOLD, 1024 * 1024 * 1024))
    _done = ok
    if not ok:
        logger.debug("mallopt refused the thresholds; allocator left as is")
    return ok


def release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc malloc_trim), e.g. after loading a voice.

    With the raised trim threshold nothing is returned automatically, so the transient copies
    made while reading a voice file would otherwise stay resident.
    """
    if not _done:
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass
