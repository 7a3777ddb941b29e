"""`python -m devstack`: run the whole service locally on the embedded defaults until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from types import FrameType

from .restarts import RestartBudget
from .stack import Stack, StackConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("--port", type=int, default=8000, help="gateway HTTP port (default 8000)")
    parser.add_argument("--consumer-metrics-port", type=int, default=9101)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    stopping = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    stack = Stack(StackConfig(web_port=args.port, consumer_metrics_port=args.consumer_metrics_port))
    print("Starting the stack (broker, migrations, gateway, event consumer, agents)...", flush=True)
    try:
        stack.start()
    except Exception as error:
        print(f"The stack did not start: {error}", file=sys.stderr)
        return 1
    url = stack.gateway_url
    print(
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

Press Ctrl-C to stop every process.""",
        flush=True,
    )
    exit_code = 0
    # A process that dies is started again, as a container restart policy would: its jobs are
    # released or re-sent (claims, watchdog), so the stack heals; a crash loop stops the stack.
    budget = RestartBudget()
    try:
        while not stopping and exit_code == 0:
            for name, code in stack.exited().items():
                log = stack.log_dir / f"{name}.log"
                if not budget.allow(name, time.monotonic()):
                    print(f"{name} keeps dying (exit code {code}); giving up, see {log}", file=sys.stderr)
                    exit_code = 1
                    break
                print(f"{name} exited with code {code}; restarting it (see {log})", file=sys.stderr, flush=True)
                stack.respawn(name)
            time.sleep(0.5)
    finally:
        print("Stopping...", flush=True)
        stack.stop()
        print("Stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
