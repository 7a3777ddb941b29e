"""CPU seconds of the stack's processes and of the machine's Postgres and Redis (Linux /proc).

CPU time, unlike wall time, is what a request or a job costs whatever else the machine runs:
the benchmarks compare it per request and per job."""

from __future__ import annotations

import os
from pathlib import Path

from devstack.stack import Stack


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, ValueError, IndexError):
        return 0.0
    return total + sum(tree_cpu_s(int(child)) for child in children)


def command_cpu_s(command: str) -> float:
    """CPU seconds so far of every process whose command name is `command`, with their children
    that ended (a server's backends are its children, named like it: each is counted once)."""
    total = 0.0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() != command:
                continue
            fields = (comm.parent / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            continue  # gone meanwhile
        total += sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime..cstime
    return total


def stack_cpu_s(stack: Stack) -> dict[str, float]:
    """CPU seconds so far of each process of the stack (the broker runs in this process), and of
    the machine's Postgres and Redis servers (nothing else uses them while the bench runs)."""
    usage = {name: tree_cpu_s(process.pid) for name, process in stack.processes.items()}
    usage["bench process (broker, clients)"] = tree_cpu_s(os.getpid()) - sum(
        tree_cpu_s(process.pid) for process in stack.processes.values()
    )
    usage["postgres (all processes)"] = command_cpu_s("postgres")
    usage["redis-server"] = command_cpu_s("redis-server")
    return usage


def machine_ticks() -> tuple[int, int]:
    """(steal, total) clock ticks of the whole machine so far (Linux /proc/stat; zeros elsewhere).

    Steal is time the hypervisor ran something else while this machine's vCPUs had work: on a
    shared cloud machine it slows every process without showing in their CPU seconds."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    # user nice system idle iowait irq softirq steal (guest time is already in user and nice)
    return (fields[7], sum(fields[:8])) if len(fields) >= 8 else (0, 0)


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's ticks between two `machine_ticks()` readings that was stolen."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0
