"""Print a `.env` for docker-compose with fresh random secrets: `python scripts/make_env.py > .env`.

Standard library only. The Pulsar token is an HS256 JWT with subject "tts" signed with the
generated secret key, the format Pulsar's AuthenticationProviderToken verifies.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import secrets


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pulsar_token(*, secret_key: bytes, subject: str) -> str:
    header = _b64url(json.dumps({"alg": "HS256"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps({"sub": subject}, separators=(",", ":")).encode())
    signature = hmac.new(secret_key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def make_env(*, site_host: str) -> dict[str, str]:
    pulsar_key = secrets.token_bytes(32)
    return {
        "TTS_SITE_HOST": site_host,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
        "REDIS_PASSWORD": secrets.token_urlsafe(24),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(18),
        "PULSAR_TOKEN_SECRET_KEY": base64.b64encode(pulsar_key).decode("ascii"),
        "PULSAR_AUTH_TOKEN": pulsar_token(secret_key=pulsar_key, subject="tts"),
        "TTS_METRICS_TOKEN": secrets.token_urlsafe(32),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--site-host", default="localhost", help="the public host name (default: localhost)")
    args = parser.parse_args()
    for name, value in make_env(site_host=args.site_host).items():
        print(f"{name}={value}")


if __name__ == "__main__":
    main()
