"""Production settings: no default secrets, HTTPS only, TLS ends at the reverse proxy.

`DJANGO_SECRET_KEY` and `DJANGO_ALLOWED_HOSTS` are required (docker-compose takes them from
`.env`). `manage.py check --deploy --fail-level WARNING` passes with the compose environment
(tests/test_production_settings.py).
"""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import env

SECRET_KEY = env.str("DJANGO_SECRET_KEY")  # no default: refuse to start without one
DEBUG = False
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")

# The reverse proxy (deploy/Caddyfile) terminates TLS and sets X-Forwarded-Proto itself.
# Trust that header only when the proxy is the sole way in (gunicorn not published): a
# client that reaches gunicorn directly could otherwise claim to be on HTTPS.
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Probes and the Prometheus scrape come over the internal network in plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
