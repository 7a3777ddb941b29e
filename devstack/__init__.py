"""Local process management for the embedded stack: used by the run command, tests and benchmarks.

Not imported by the gateway, the agent or `vits`: production runs each part as its own
service (see docker-compose.yml).
"""
