"""The scheduler alone: priority, polling, preemption and exact resumption."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from synthesis_agent.scheduler import Scheduler


@dataclass(eq=False)
class SimJob:
    name: str
    sentences: int
    done: list[int] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return len(self.done) == self.sentences


def test_idle_scheduler_polls_every_queue_in_priority_order() -> None:
    scheduler: Scheduler[SimJob] = Scheduler(("short", "medium", "long"))
    assert scheduler.current() is None
    assert scheduler.queues_to_poll() == ("short", "medium", "long")


def test_busy_scheduler_polls_only_higher_queues() -> None:
    scheduler: Scheduler[SimJob] = Scheduler(("short", "medium", "long"))
    scheduler.admit("medium", SimJob("m", 3))
    assert scheduler.queues_to_poll() == ("short",)
    scheduler.admit("short", SimJob("s", 1))
    assert scheduler.queues_to_poll() == ()


def test_higher_class_preempts_and_lower_resumes() -> None:
    scheduler: Scheduler[SimJob] = Scheduler(("short", "medium", "long"))
    long_job, medium_job, short_job = SimJob("l", 5), SimJob("m", 2), SimJob("s", 1)
    assert scheduler.admit("long", long_job) is None
    assert scheduler.admit("medium", medium_job) is long_job
    assert scheduler.admit("short", short_job) is medium_job
    assert [job.name for _, job in scheduler] == ["s", "m", "l"]
    assert [job.name for _, job in scheduler.paused()] == ["m", "l"]
    scheduler.finish(short_job)
    assert scheduler.current() == ("medium", medium_job)
    scheduler.finish(medium_job)
    assert scheduler.current() == ("long", long_job)
    assert len(scheduler) == 1


def test_same_queue_is_first_come_first_served_and_no_preemption() -> None:
    scheduler: Scheduler[SimJob] = Scheduler(("short", "long"))
    first, second = SimJob("a", 1), SimJob("b", 1)
    scheduler.admit("long", first)
    assert scheduler.admit("long", second) is None
    assert scheduler.current() == ("long", first)


def test_unknown_queue_and_unknown_job_are_errors() -> None:
    scheduler: Scheduler[SimJob] = Scheduler(("short",))
    with pytest.raises(ValueError):
        scheduler.admit("long", SimJob("x", 1))
    with pytest.raises(ValueError):
        scheduler.finish(SimJob("y", 1))


def simulate(arrivals: dict[int, list[tuple[str, SimJob]]], queues: tuple[str, ...]) -> list[tuple[str, int]]:
    """Drive the scheduler like the worker does: between sentences, admit waiting jobs from
    the queues it asks for, then run one sentence of the current job. Returns the trace."""
    scheduler: Scheduler[SimJob] = Scheduler(queues)
    waiting: dict[str, list[SimJob]] = {queue: [] for queue in queues}
    trace: list[tuple[str, int]] = []
    tick = 0
    while tick < 1000:
        for queue, job in arrivals.get(tick, []):
            waiting[queue].append(job)
        for queue in scheduler.queues_to_poll():
            if waiting[queue]:
                scheduler.admit(queue, waiting[queue].pop(0))
                break
        current = scheduler.current()
        if current is None and not any(waiting.values()) and tick > max(arrivals):
            break
        if current is not None:
            job = current[1]
            job.done.append(len(job.done))
            trace.append((job.name, job.done[-1]))
            if job.finished:
                scheduler.finish(job)
        tick += 1
    return trace


def test_long_job_preempted_by_short_ones_does_every_sentence_once_in_order() -> None:
    long_job = SimJob("long", 12)
    shorts = [SimJob(f"short{i}", 2) for i in range(3)]
    medium = SimJob("medium", 3)
    trace = simulate(
        {
            0: [("long", long_job)],
            3: [("short", shorts[0]), ("short", shorts[1])],
            5: [("medium", medium)],
            9: [("short", shorts[2])],
        },
        ("short", "medium", "long"),
    )
    assert long_job.done == list(range(12))
    assert [index for name, index in trace if name == "long"] == list(range(12))
    assert all(job.finished for job in [*shorts, medium])
    names = [name for name, _ in trace]
    # Each waiting job starts at the next sentence boundary, shorts before the medium; the
    # medium job is itself preempted by a later short one and resumes where it stopped.
    assert names[:12] == ["long"] * 3 + ["short0"] * 2 + ["short1"] * 2 + ["medium"] * 2 + ["short2"] * 2 + ["medium"]
    assert [index for name, index in trace if name == "medium"] == [0, 1, 2]
    assert names[-1] == "long"


def test_fifo_mode_single_queue_never_preempts() -> None:
    first, second = SimJob("long", 5), SimJob("short", 1)
    trace = simulate({0: [("fifo", first)], 1: [("fifo", second)]}, ("fifo",))
    assert [name for name, _ in trace] == ["long"] * 5 + ["short"]
