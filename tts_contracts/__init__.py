"""The wire contract between the gateway and the synthesis agents, owned by neither.

Pure data: no Django, no Pulsar, no torch, and none of the service's other packages. Topic and
subscription names, length classes, the job message, one typed event per kind, shared defaults.
"""

from . import defaults
from .classes import FIFO_QUEUE, LENGTH_CLASSES, LengthClass, classes_in_priority_order, length_class_for
from .fields import ContractError
from .messages import (
    EVENT_TYPES,
    FAILURE_CODES,
    SCHEMA_VERSION,
    AnyEvent,
    CompletedEvent,
    EventType,
    FailedEvent,
    HeartbeatEvent,
    JobEnded,
    JobEvent,
    JobMessage,
    PreviewEvent,
    SegmentEvent,
    StartedEvent,
    claim_key,
    decode_event,
    decode_events,
    encode_events,
)
from .topics import (
    AGENT_SUBSCRIPTION,
    DEAD_LETTER_SUBSCRIPTION,
    DEDICATED_VOICES_SETTING,
    EVENTS_SUBSCRIPTION,
    JOB_QUEUES,
    Topics,
    check_voice_topic_part,
    every_job_topic,
    job_queue,
    job_topic_for,
    parse_dedicated_voices,
)

__all__ = [
    "AGENT_SUBSCRIPTION",
    "DEAD_LETTER_SUBSCRIPTION",
    "DEDICATED_VOICES_SETTING",
    "EVENTS_SUBSCRIPTION",
    "EVENT_TYPES",
    "FAILURE_CODES",
    "FIFO_QUEUE",
    "JOB_QUEUES",
    "LENGTH_CLASSES",
    "SCHEMA_VERSION",
    "AnyEvent",
    "CompletedEvent",
    "ContractError",
    "EventType",
    "FailedEvent",
    "HeartbeatEvent",
    "JobEnded",
    "JobEvent",
    "JobMessage",
    "LengthClass",
    "PreviewEvent",
    "SegmentEvent",
    "StartedEvent",
    "Topics",
    "check_voice_topic_part",
    "claim_key",
    "classes_in_priority_order",
    "decode_event",
    "decode_events",
    "defaults",
    "encode_events",
    "every_job_topic",
    "job_queue",
    "job_topic_for",
    "length_class_for",
    "parse_dedicated_voices",
]
