"""Long-lived responses served by async views under ASGI: SSE job events and streaming audio."""
