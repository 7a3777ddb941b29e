"""`StoredFileResponse`: a stored audio file sent block by block under ASGI too.

Django's ASGI handler sends a streaming response through its `__aiter__`, and a
`FileResponse`'s body is a synchronous iterator, which Django reads *whole* into a list in
a worker thread before it sends the first byte (with a warning in the log). A job of the
maximum text length has a WAV of about 225 MB: a few such downloads at once would push a
gateway worker past its memory limit, and every client waits for the whole read before it
hears a byte. This response reads the file one block at a time in a worker thread instead, and
keeps `FileResponse`'s headers (length, disposition) and its sync path (WSGI, test client).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.http import FileResponse

# Bytes read per worker-thread hop when streaming asynchronously: large enough that the hops
# cost little next to the bytes (900 for 225 MB), small enough that a download holds little.
ASYNC_BLOCK_BYTES = 256 * 1024


class StoredFileResponse(FileResponse):
    """A `FileResponse` over an open file that an ASGI server streams without reading it whole."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        filelike = self.file_to_stream
        if filelike is None:  # built from an iterator, not a file: Django's own handling
            async for part in super().__aiter__():
                yield part
            return
        # Not thread-sensitive: the reads need no request thread and must not queue behind one.
        read = sync_to_async(filelike.read, thread_sensitive=False)
        while block := await read(ASYNC_BLOCK_BYTES):
            yield block
