"""The one place that reads the environment (django-environ).

Settings modules import `env` and the paths from here; nothing else in the project reads
`os.environ` for configuration. A `.env` file at the repository root is read when present.
"""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # silently skipped when the file does not exist

# Runtime state (SQLite file, file cache, media, collected static) lives under one folder.
VAR_DIR = Path(env.str("TTS_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
