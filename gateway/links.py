"""A job's URLs, built from paths reversed once per script prefix instead of five `reverse()`
and `build_absolute_uri()` calls per job on every submit, poll and list page.

`reverse()` walks the URL resolver for each link; with five links per job it cost about 7 % of
a submit's CPU in the web process (cProfile), and the event consumer reversed the audio URL
of every final result.
"""

from __future__ import annotations

import functools
import uuid

from django.http import HttpRequest
from django.urls import get_script_prefix, reverse

# Stands for the job id in the reversed paths: the nil UUID, never a job's id (ids are uuid4).
_ID_SLOT = str(uuid.UUID(int=0))
JOB_LINK_VIEWS = {
    "self": "gateway:job-detail",
    "audio": "gateway:job-audio",
    "cancel": "gateway:job-cancel",
    "events": "gateway:job-events",
    "audio_stream": "gateway:job-audio-stream",
}


@functools.lru_cache(maxsize=16)
def _paths(script_prefix: str) -> dict[str, str]:
    # The prefix is the cache key: `reverse()` puts the request's script prefix in front.
    return {name: reverse(view, kwargs={"job_id": _ID_SLOT}) for name, view in JOB_LINK_VIEWS.items()}


def job_path(name: str, job_id: uuid.UUID | str) -> str:
    """The path of the job's link `name` (a key of JOB_LINK_VIEWS), as `reverse()` gives it."""
    return _paths(get_script_prefix())[name].replace(_ID_SLOT, str(job_id))


def job_links(*, job_id: uuid.UUID | str, request: HttpRequest) -> dict[str, str]:
    """Absolute URLs of the job's resources, as `request.build_absolute_uri(reverse(...))` gives them."""
    origin = request.build_absolute_uri("/")[:-1]  # scheme and host, checked once
    job = str(job_id)
    return {name: origin + path.replace(_ID_SLOT, job) for name, path in _paths(get_script_prefix()).items()}
