"""ASGI entry point: Django's handler with its middleware chain built in sync mode.

Django runs a `MiddlewareMixin` middleware in async mode by handing each `process_request` and
`process_response` to a thread and back: 15 thread switches for one health check here. Built
in sync mode, the whole chain and a sync view (all of the REST API) run in one thread, entered
once per request. `bench/web.py` (gunicorn's uvicorn worker, 2 AMD EPYC cores) measured the web
workers' CPU per health check at 4.0-4.4 ms against 8.0-8.9 ms with Django's stock handler, and
per job submit at 25.6-29.4 ms against 31.3-37.5 ms.
Async views (SSE, audio streams) still run on the event loop, called from that thread, and
their streamed bodies are sent by the handler asynchronously as before.
"""

from __future__ import annotations

import os
from typing import Any

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tts_project.settings.base")


class SyncChainASGIHandler(ASGIHandler):
    _middleware_chain: Any

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        # The handler awaits the chain: one switch into the request's thread for all of it.
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)


django.setup(set_prefix=False)
application = SyncChainASGIHandler()
