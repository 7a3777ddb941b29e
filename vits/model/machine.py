"""What kind of CPU this is, read once from /proc/cpuinfo: the engines are chosen by the machine.

Timed at load, a choice between two engines that compute different last bits came out
differently in agents (or restarts) starting on a loaded machine, and their audio differed; a
rule by CPU kind gives every agent on a kind of machine the same samples.
"""

from __future__ import annotations

from pathlib import Path


def cpu_family(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, int]:
    """(vendor, family) of the first CPU in `cpuinfo`, ("", -1) where it cannot be read."""
    vendor, family = "", -1
    try:
        lines = cpuinfo.read_text(errors="replace").splitlines()
    except OSError:
        return vendor, family
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip() == "vendor_id" and not vendor:
            vendor = value.strip()
        elif name.strip() == "cpu family" and family < 0 and value.strip().isdigit():
            family = int(value.strip())
        if vendor and family >= 0:
            break
    return vendor, family
