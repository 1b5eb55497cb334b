"""Peak resident memory of this process, per variant (Linux /proc; None elsewhere)."""

from pathlib import Path


def reset_peak() -> bool:
    """Start a new peak (writing 5 to clear_refs resets VmHWM); False when not allowed,
    and the peak is then the process's since it started."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None
