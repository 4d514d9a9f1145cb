"""The process's peak resident memory, measurable per stage: on Linux the peak is reset at a stage's start
(`/proc/self/clear_refs`), so a run's model stage reports its own peak, not the SASRec stage's before it."""

from __future__ import annotations

import resource
from pathlib import Path

_STATUS, _CLEAR = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def reset_peak() -> bool:
    """Start a new peak from the current resident size; False where the OS does not allow it."""
    try:
        _CLEAR.write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> int:
    """Peak resident memory in MB since the last `reset_peak` (Linux), else since the process started."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # kB on Linux; a fallback elsewhere
