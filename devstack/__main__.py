"""`python -m devstack`: run the whole service locally on the embedded defaults until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time

from .restarts import RestartBudget
from .stack import Stack, StackConfig

# Each stops the stack in order. SIGHUP too: the children run in their own process groups, so a
# closed terminal's hangup reaches only this process, and dying of it would orphan them.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def stop_requested() -> threading.Event:
    """An event that any of STOP_SIGNALS sets (handlers installed now, from the main thread)."""
    stopping = threading.Event()
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda signum, frame: stopping.set())
    return stopping


def say(message: str, *, error: bool = False) -> None:
    """Print a line; after a hangup the terminal is gone and writing to it fails, which must not
    keep the stack from stopping (every child also logs to its own file)."""
    with contextlib.suppress(OSError):
        print(message, file=sys.stderr if error else sys.stdout, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("--port", type=int, default=8000, help="gateway HTTP port (default 8000)")
    parser.add_argument("--consumer-metrics-port", type=int, default=9101)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    stopping = stop_requested()

    stack = Stack(StackConfig(web_port=args.port, consumer_metrics_port=args.consumer_metrics_port))
    say("Starting the stack (broker, migrations, gateway, event consumer, agents)...")
    try:
        stack.start()
    except Exception as error:
        say(f"The stack did not start: {error}", error=True)
        return 1
    url = stack.gateway_url
    say(
        f"""
Text-to-speech service is up.
  API            {url}/api/v1/
  API docs       {url}/api/docs
  Admin          {url}/admin/   (user {stack.config.demo_username}, password {stack.config.demo_password})
  Health         {url}/healthz   {url}/readyz
  Metrics        {url}/metrics   {stack.consumer_metrics_url}
                 {"   ".join(stack.agent_metrics_urls)}
  Broker         {stack.env["PULSAR_URL"]}
  Logs           {stack.log_dir}/
  Demo API token {stack.api_token}

Try:
  curl -s -X POST {url}/api/v1/jobs -H "Authorization: Token {stack.api_token}" \\
       -H "Content-Type: application/json" -d '{{"text": "Hello from the speech service."}}'

Press Ctrl-C to stop every process."""
    )
    exit_code = 0
    # A process that dies is started again, as a container restart policy would: its jobs are
    # released or re-sent (claims, watchdog), so the stack heals; a crash loop stops the stack.
    budget = RestartBudget()
    try:
        while not stopping.is_set() and exit_code == 0:
            for name, code in stack.exited().items():
                log = stack.log_dir / f"{name}.log"
                if not budget.allow(name, time.monotonic()):
                    say(f"{name} keeps dying (exit code {code}); giving up, see {log}", error=True)
                    exit_code = 1
                    break
                say(f"{name} exited with code {code}; restarting it (see {log})", error=True)
                stack.respawn(name)
            time.sleep(0.5)
    finally:
        say("Stopping...")
        stack.stop()
        say("Stopped.")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
