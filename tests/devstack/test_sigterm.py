"""A program holding a stack in a `with` block (a benchmark) stops the stack when it gets SIGTERM,
instead of dying and leaving the broker, web, consumer and agents running."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from devstack.stack import REPO_ROOT

# The real Stack class with start and stop replaced by markers: what is tested is the signal path
# through `__enter__`/`__exit__`, not the processes (tests/devstack/test_stop_order.py has those).
HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from devstack.stack import Stack

    marker = Path(sys.argv[1])

    class MarkedStack(Stack):
        def start(self):
            return self

        def stop(self):
            marker.write_text("stopped")

    with MarkedStack():
        print("ready", flush=True)
        time.sleep(60)
    """
)


def test_sigterm_unwinds_the_with_block_and_stops_the_stack(tmp_path: Path) -> None:
    marker = tmp_path / "stopped"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(marker)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "ready"
    holder.send_signal(signal.SIGTERM)
    assert holder.wait(timeout=30) == 128 + signal.SIGTERM
    assert marker.read_text() == "stopped"


def test_a_handler_already_installed_is_left_alone() -> None:
    from devstack.stack import Stack

    def own(signum: int, frame: object) -> None:
        raise AssertionError("not called")

    before = signal.signal(signal.SIGTERM, own)
    try:
        stack = Stack()
        stack.start = lambda: stack  # type: ignore[method-assign]
        stack.stop = lambda: None  # type: ignore[method-assign]
        with stack:
            assert signal.getsignal(signal.SIGTERM) is own
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, before)
