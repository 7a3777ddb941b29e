"""Every write of the gateway, split by concern; the only code that changes `SynthesisJob.status`.

Functions are keyword-only and typed, and raise `ApplicationError` for anything a caller did
wrong. Callers import from here, not from the modules:

- `inputs`: checking a job's input, the batch caps, the duration estimate
- `transitions`: the state machine, one helper per move
- `jobs`: submit, batch, cancel, retry, delete
- `idempotency`: `Idempotency-Key` on submissions
- `outbox`: the job message written with the job, published after commit, and the relay
- `watchdog`: re-sending jobs whose agent went silent
- `events`: applying agent events and dead letters
- `dead_letters`: events the consumer could not apply, kept for an operator
- `audio`: assembling the WAV from the segments, written atomically
- `encodings`: FLAC/MP3/Opus of a job's audio, stored once beside the WAV
- `media`: the sweep of orphan audio files
"""

from .audio import stored_audio_open
from .dead_letters import event_dead_letter_create
from .encodings import job_audio_encode
from .events import (
    APPLIED,
    DUPLICATE,
    INVALID,
    RESENT,
    STALE,
    job_apply_event,
    job_apply_events,
    job_fail_dead_letter,
)
from .idempotency import idempotency_keys_purge_expired, job_submit_idempotent
from .inputs import JobInput, JobRequest, job_batch_check_size, job_input_estimate_seconds, job_input_validate
from .jobs import job_cancel, job_delete, job_retry, job_submit, job_submit_batch
from .media import media_sweep_orphans
from .outbox import RelayResult, outbox_create, outbox_publish, outbox_relay_pending
from .transitions import job_transition
from .watchdog import job_republish_stalled

__all__ = [
    "APPLIED",
    "DUPLICATE",
    "INVALID",
    "RESENT",
    "STALE",
    "JobInput",
    "JobRequest",
    "RelayResult",
    "event_dead_letter_create",
    "idempotency_keys_purge_expired",
    "job_apply_event",
    "job_apply_events",
    "job_audio_encode",
    "job_batch_check_size",
    "job_cancel",
    "job_delete",
    "job_fail_dead_letter",
    "job_input_estimate_seconds",
    "job_input_validate",
    "job_republish_stalled",
    "job_retry",
    "job_submit",
    "job_submit_batch",
    "job_submit_idempotent",
    "job_transition",
    "media_sweep_orphans",
    "outbox_create",
    "outbox_publish",
    "outbox_relay_pending",
    "stored_audio_open",
]
