"""Memory readings shared by the benchmarks."""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
import sys
from pathlib import Path

MIB = 1024 * 1024


def heap_mib() -> float:
    """Anonymous resident memory of this process (heap, not file-backed LMDB pages), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mib()  # no /proc: the peak is the best available bound


def peak_rss_mib() -> float:
    """Peak resident memory of this process, in MiB."""
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024


def return_freed_memory() -> bool:
    """Ask the C allocator to give freed heap memory back to the system (glibc's ``malloc_trim``), so that a
    following `heap_mib` counts memory in use rather than free chunks it kept. False where there is no glibc."""
    name = ctypes.util.find_library("c")
    if sys.platform != "linux" or name is None:
        return False
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True
