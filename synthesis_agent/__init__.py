"""The synthesis agent: a standalone process that turns job messages into audio events.

It consumes job messages by length class from Pulsar, synthesizes them sentence by sentence
with `vits` (short jobs preempt longer ones between sentences), caches sentences in Redis or
on disk, and publishes `started` / `segment` / `completed` / `failed` events. It never
imports Django and never reads the database: the job message carries everything.

Modules, one job each: `config` (settings, read from the environment by `from_env`), `voice`
(the voice protocol and pool), `cache` (sentence cache), `claims` (Redis claims and crash
counts), `control` (jobs the gateway ended), `observer` (lifecycle hooks) and `metrics` (the
Prometheus observer), `scheduler` (which job runs the next sentence, pure), `segments`,
`outcomes` and `pipeline` (one job as a sequence of events, pure domain), `connection` (Pulsar
plumbing), `worker` (the loop), `logs` (contextual logging) and `__main__` (the command line).
The wire format is `tts_contracts`.
"""
