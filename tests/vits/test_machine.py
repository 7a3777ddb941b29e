"""`vits.model.machine.cpu_family`: the CPU's kind, which the engine rules read."""

from __future__ import annotations

from pathlib import Path

from vits.model.machine import cpu_family


def test_cpu_family_reads_the_vendor_and_family_or_says_unknown(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n\n"
        "processor\t: 1\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"
    )
    assert cpu_family(cpuinfo) == ("AuthenticAMD", 25)
    cpuinfo.write_text("processor\t: 0\ncpu family\t: unknown\n")
    assert cpu_family(cpuinfo) == ("", -1)
    assert cpu_family(tmp_path / "missing") == ("", -1)
