"""`python -m tests.devstack.supervisor VAR_DIR PREFIX`: the devstack supervisor's signal handling
and stop order around one busy agent, without the gateway.

Starts the embedded broker and a fake-voice agent through `Stack` (as `python -m devstack` does),
plus a stand-in consumer process, prints the broker URL and the agent's pid, then waits for
a stop signal (`devstack.__main__.stop_requested`, as `python -m devstack`) and calls `Stack.stop()`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from devstack.__main__ import stop_requested
from devstack.broker import free_port, wait_for_port
from devstack.stack import REPO_ROOT, Stack, StackConfig


def main(var_dir: str, prefix: str) -> int:
    stopping = stop_requested()
    stack = Stack(StackConfig(var_dir=Path(var_dir), agents=()))
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    stack._start_broker()
    port = free_port()
    stack.agent_names.add("agent-long")
    stack.agent_ports["agent-long"] = port
    env = dict(
        stack.env,
        FAKE_VOICE_DELAY_S="0.2",
        TTS_DEFAULT_VOICE="fake-voice",
        TTS_SHUTDOWN_GRACE_S="0.5",
        TTS_TOPIC_PREFIX=prefix,
        PYTHONPATH=str(REPO_ROOT),
    )
    command = ["-m", "tests.synthesis_agent.fake_agent", "--classes", "long", "--agent-id", "agent-long"]
    stack._spawn("agent-long", [sys.executable, *command, "--metrics-port", str(port)], env)
    stack._spawn("consumer", [sys.executable, "-c", "import time; time.sleep(600)"])
    wait_for_port("127.0.0.1", port, timeout_s=60)
    print(stack.env["PULSAR_URL"], stack.processes["agent-long"].pid, flush=True)
    stopping.wait()
    began = time.monotonic()
    stack.stop()
    print(f"stopped in {time.monotonic() - began:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
