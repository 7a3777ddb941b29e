"""Who may read /metrics and the detailed /readyz body: the monitoring network, or a token.

The client address is REMOTE_ADDR, never X-Forwarded-For (which any client can set): behind
the reverse proxy every public request comes from the proxy's address, which is outside the
monitoring network in docker-compose, so the public never reaches these through the proxy.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from functools import cache

from django.conf import settings
from django.http import HttpRequest

logger = logging.getLogger(__name__)


@cache
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in spec if item.strip())


def monitoring_allowed(request: HttpRequest) -> bool:
    token = settings.TTS_METRICS_TOKEN
    if token:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
            return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(settings.TTS_MONITORING_NETWORKS)))
