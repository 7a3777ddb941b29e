"""Ctrl-C on `make run` (or closing its terminal) with a busy agent: only the supervisor gets the
signal (children run in their own process groups), and it stops them in order, so the agent
releases its job through a broker that is still up and exits cleanly instead of being killed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pulsar
import pytest

from devstack.broker import EmbeddedBroker
from devstack.stack import REPO_ROOT
from tts_contracts import AGENT_SUBSCRIPTION, JobMessage, Topics, decode_events
from tts_runtime import pulsar_client

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def kill_session(session_id: int) -> None:
    """SIGKILL every process left in the session: the supervisor's children run in its session."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getsid(int(entry)) == session_id:
                    os.kill(int(entry), signal.SIGKILL)


# What Ctrl-C sends to the terminal's foreground process group, and what closing the terminal sends.
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP], ids=["ctrl-c", "hangup"])
def test_a_signal_to_the_foreground_group_reaches_only_the_supervisor_which_stops_a_busy_agent_cleanly(
    tmp_path: Path, signum: signal.Signals
) -> None:
    prefix = f"stop{uuid.uuid4().hex[:8]}"
    topics = Topics(prefix=prefix)
    env = {key: value for key, value in os.environ.items() if key != "PULSAR_URL"}
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "tests.devstack.supervisor", str(tmp_path), prefix],
        cwd=REPO_ROOT,
        env=dict(env, PYTHONPATH=str(REPO_ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal's foreground job is
    )
    try:
        assert supervisor.stdout is not None
        url, _, agent_pid = supervisor.stdout.readline().strip().partition(" ")
        assert url.startswith("pulsar://"), supervisor.stderr.read() if supervisor.stderr else ""
        # Out of the supervisor's process group (Ctrl-C below must miss it) but in its session, so
        # that autogroup scheduling weighs its threads' nice values against the other children's.
        assert os.getpgid(int(agent_pid)) == int(agent_pid)
        assert os.getsid(int(agent_pid)) == os.getsid(supervisor.pid) == supervisor.pid
        client = pulsar_client(url)
        events = client.subscribe(topics.events_topic, "test", initial_position=pulsar.InitialPosition.Earliest)
        job = JobMessage(
            job_id=uuid.uuid4().hex,
            attempt=1,
            text=" ".join(f"Sentence {prefix} {i} is here." for i in range(200)),  # never cached before
            voice="",
            length_class="long",
        )
        client.create_producer(topics.job_topic("long")).send(job.to_bytes(), partition_key=job.job_id)
        while "segment" not in {event.type for event in decode_events(events.receive(timeout_millis=60_000).data())}:
            pass
        client.close()

        os.killpg(supervisor.pid, signum)  # the whole foreground group, as the terminal does
        out, err = supervisor.communicate(timeout=60)
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
            supervisor.wait()
        kill_session(supervisor.pid)  # children a failed stop left behind (none when it passes)
    assert supervisor.returncode == 0, err
    assert "stopped in" in out and "did not stop within" not in err and "killing it" not in err
    agent_log = (tmp_path / "log" / "agent-long.log").read_text()
    assert "released at sentence" in agent_log and "agent stopped" in agent_log, agent_log[-3000:]
    assert "KeyboardInterrupt" not in agent_log

    # The job went back to the broker before it stopped: it is still there for the next agent.
    broker = EmbeddedBroker(tmp_path / "broker", port=int(url.rsplit(":", 1)[1])).start()
    try:
        client = pulsar_client(broker.url)
        consumer = client.subscribe(
            topics.job_topic("long"), AGENT_SUBSCRIPTION, consumer_type=pulsar.ConsumerType.Shared
        )
        assert JobMessage.from_bytes(consumer.receive(timeout_millis=10_000).data()).job_id == job.job_id
        client.close()
    finally:
        broker.stop()
