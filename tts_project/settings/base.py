"""Settings shared by every environment; the defaults run the whole stack locally.

Every value comes from the environment through `env` (see `env.py` and docs/CONTRACTS.md):
SQLite, a file cache and the embedded broker's address by default; Postgres, Redis and
Apache Pulsar by setting DATABASE_URL, REDIS_URL and PULSAR_URL.
"""

from __future__ import annotations

from tts_contracts import defaults, parse_dedicated_voices

from .env import BASE_DIR, VAR_DIR, env  # noqa: F401 - BASE_DIR is part of the settings

VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite and the file cache need the folder

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-local-only-key-set-DJANGO_SECRET_KEY-in-production")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served locally: no CDN needed
    "django_prometheus",
    "gateway",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "tts_project.urls"
WSGI_APPLICATION = "tts_project.wsgi.application"
ASGI_APPLICATION = "tts_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------

# django-prometheus wraps the stock backends to count queries and errors per database.
_PROMETHEUS_DB_ENGINES = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}


# Runs of one statement on one connection before psycopg prepares it (psycopg's own default).
PREPARE_THRESHOLD = 5


def _database(url: str) -> dict:
    config = env.db_url_config(url)
    config["ENGINE"] = _PROMETHEUS_DB_ENGINES.get(config["ENGINE"], config["ENGINE"])
    config.setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    config["CONN_HEALTH_CHECKS"] = True
    pool_size = env.int("DATABASE_POOL_MAX_SIZE", default=10)
    if "postgresql" in config["ENGINE"] and pool_size > 0:
        # One pool per process, shared by its threads. Under Django's stock ASGI handler every
        # request ran its sync code in a thread of its own, so persistent per-thread connections
        # (CONN_MAX_AGE) were opened per request and left open: 20 concurrent clients exhausted Postgres's 100
        # connections, and each new connection cost both processes a connect (Postgres forks a
        # backend). 0 turns it off, e.g. behind PgBouncer, for the per-thread connections.
        config["CONN_MAX_AGE"] = 0  # the pool keeps the connections; Django refuses both
        config.setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": pool_size,
            "timeout": 10,
            # psycopg_pool retries a failed connect with a doubling delay, capped only by this
            # (300 s by default): after a 45 s outage requests were answered again only 14 s
            # after Postgres was back, 503s (the 10 s wait out) before. Given up sooner, the next
            # request starts a fresh try at once (1.2 s in the same trial).
            "reconnect_timeout": 5.0,
        }
    if "postgresql" in config["ENGINE"] and env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        # The service runs the same few statements over and over (a submit is 7, an applied
        # batch of events 2): bound on the server, each is parsed and planned once per
        # connection after PREPARE_THRESHOLD runs. Postgres's CPU per submit: 2.6 ms against
        # 3.3 (bench/stack_cpu.py). Off for poolers that cannot carry prepared statements
        # across transactions (PgBouncer before 1.21, or with max_prepared_statements = 0).
        options = config.setdefault("OPTIONS", {})
        options.setdefault("server_side_binding", True)
        options.setdefault("prepare_threshold", PREPARE_THRESHOLD)
    if "sqlite3" in config["ENGINE"]:
        # Web workers, the event consumer and the relay write concurrently. WAL lets readers run
        # beside the one writer; IMMEDIATE takes the write lock when a transaction begins, so a
        # transaction never fails upgrading a read lock ("database is locked" at once, which no
        # busy timeout helps); the busy timeout makes a writer wait its turn instead of failing.
        options = config.setdefault("OPTIONS", {})
        options.setdefault("timeout", 20)
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault(
            "init_command", "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=20000; PRAGMA synchronous=NORMAL;"
        )
    return config


DATABASE_URL = env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES = {"default": _database(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")


def _cache(redis_url: str) -> dict:
    if redis_url:
        return {
            "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",  # django-redis + metrics
            "LOCATION": redis_url,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 2,
                "SOCKET_TIMEOUT": 2,
            },
            "KEY_PREFIX": "tts-gateway",
        }
    return {
        "BACKEND": "django_prometheus.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "cache"),
    }


CACHES = {"default": _cache(REDIS_URL)}

# --- Auth, i18n -----------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media files -----------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(VAR_DIR / "static"))
MEDIA_URL = "media/"  # not served publicly: audio goes through the API (owner) or the admin (staff)
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Whitenoise serves the admin's assets from gunicorn; hashed names cache forever.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# A file missing from the manifest (collectstatic not re-run) falls back to its plain name
# instead of failing the admin page with a 500.
WHITENOISE_MANIFEST_STRICT = False

# --- REST API -------------------------------------------------------------------------------

# Request threads per gateway worker process (tts_project/asgi.py): sync views run there, one
# request per thread at a time, each holding at most one pooled database connection, so keep
# it, with the streams' 4 database threads, within DATABASE_POOL_MAX_SIZE (check tts.W001).
# Async views (streams) run on the event loop instead.
WEB_REQUEST_THREADS = env.int("TTS_WEB_THREADS", default=6)

REST_FRAMEWORK = {
    # Hashed API keys: `Authorization: Bearer <key>` or `Token <key>` (gateway/apikeys.py).
    "DEFAULT_AUTHENTICATION_CLASSES": ["gateway.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Per-user rates by scope (submit, validate, read) in the shared cache: TTS_THROTTLE_RATES.
    "DEFAULT_THROTTLE_CLASSES": ["gateway.throttling.UserRateThrottle"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("TTS_API_PAGE_SIZE", default=20),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "gateway.exception_handlers.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Text-to-speech API",
    "DESCRIPTION": (
        "Submit text, poll the job, download the WAV. Authenticate with `Authorization: Bearer <key>` "
        "(or `Token <key>`). Requests are rate-limited per user (429 with Retry-After, code `throttled`) "
        "and bounded by quotas (429, codes `quota_active_jobs` and `quota_daily_chars`); see GET /api/v1/me."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Error responses, the voice enum and the exact schemas of the JSON error body.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "gateway.schema.postprocess"],
}

# --- Text-to-speech service (names and defaults in docs/CONTRACTS.md) -----------------------

PULSAR_URL = env.str("PULSAR_URL", default=defaults.PULSAR_URL)
# A JWT for a broker with token authentication (docker-compose); empty: no authentication.
PULSAR_AUTH_TOKEN = env.str("PULSAR_AUTH_TOKEN", default="")
PULSAR_TENANT = env.str("PULSAR_TENANT", default=defaults.PULSAR_TENANT)
PULSAR_NAMESPACE = env.str("PULSAR_NAMESPACE", default=defaults.PULSAR_NAMESPACE)
TTS_TOPIC_PREFIX = env.str("TTS_TOPIC_PREFIX", default=defaults.TOPIC_PREFIX)
TTS_SHORT_MAX_CHARS = env.int("TTS_SHORT_MAX_CHARS", default=defaults.SHORT_MAX_CHARS)
TTS_MEDIUM_MAX_CHARS = env.int("TTS_MEDIUM_MAX_CHARS", default=defaults.MEDIUM_MAX_CHARS)
TTS_SCHEDULING = env.str("TTS_SCHEDULING", default="priority")
if TTS_SCHEDULING not in ("priority", "fifo"):
    raise ValueError(f"TTS_SCHEDULING must be 'priority' or 'fifo', got {TTS_SCHEDULING!r}")
TTS_MAX_ATTEMPTS = env.int("TTS_MAX_ATTEMPTS", default=defaults.MAX_ATTEMPTS)
TTS_DEAD_LETTER_AFTER_DELIVERIES = env.int(
    "TTS_DEAD_LETTER_AFTER_DELIVERIES", default=defaults.DEAD_LETTER_AFTER_DELIVERIES
)
TTS_MAX_TEXT_CHARS = env.int("TTS_MAX_TEXT_CHARS", default=100_000)
TTS_MAX_BATCH = env.int("TTS_MAX_BATCH", default=50)
# Validating text costs about 1.2 s per 100,000 characters: cap a batch's total so one request
# cannot hold a web worker for minutes.
TTS_MAX_BATCH_CHARS = env.int("TTS_MAX_BATCH_CHARS", default=1_000_000)
TTS_DEFAULT_VOICE = env.str("TTS_DEFAULT_VOICE", default=defaults.DEFAULT_VOICE)
TTS_VOICES_DIR = env.str("TTS_VOICES_DIR", default="") or None  # voices besides the packaged one
# Voices with their own agent pool (`python -m synthesis_agent --voice ID`): their jobs go to
# per-voice topics. Empty: every job on the shared class topics. Ids are checked here (they
# become topic names); that each is installed is a system check (gateway/checks.py).
TTS_DEDICATED_VOICES = parse_dedicated_voices(env.str("TTS_DEDICATED_VOICES", default=""))
TTS_CONSUMER_METRICS_PORT = env.int("TTS_CONSUMER_METRICS_PORT", default=9101)
# Publisher: one send (or producer creation) waits at most this long for the broker.
TTS_PUBLISH_TIMEOUT_S = env.float("TTS_PUBLISH_TIMEOUT_S", default=5.0)
# After a failed publish, requests skip the broker for this long and leave jobs to the relay,
# so a broker outage does not add TTS_PUBLISH_TIMEOUT_S to every submit.
TTS_PUBLISH_BACKOFF_S = env.float("TTS_PUBLISH_BACKOFF_S", default=5.0)
# The relay re-publishes outbox records unconfirmed for longer than this.
TTS_OUTBOX_RELAY_AFTER_S = env.float("TTS_OUTBOX_RELAY_AFTER_S", default=5.0)
TTS_OUTBOX_RELAY_INTERVAL_S = env.float("TTS_OUTBOX_RELAY_INTERVAL_S", default=2.0)
TTS_OUTBOX_RELAY_BATCH = env.int("TTS_OUTBOX_RELAY_BATCH", default=100)
# The stalled-job watchdog (run by the event consumer's relay thread) re-publishes a running
# job whose agent has sent nothing for this long: its agent died (pulsar-lite may not hand its
# messages on) or the broker lost a confirmed event. Agents heartbeat every held job between
# steps (TTS_HEARTBEAT_INTERVAL_S, 10 s) and their claim lasts 3 intervals: 45 s is past the
# claim, so the agent that takes the re-sent message can claim it. 0 = off.
TTS_STALLED_JOB_AFTER_S = env.float("TTS_STALLED_JOB_AFTER_S", default=45.0)
# Republishes of one attempt before the watchdog gives up and fails the job.
TTS_MAX_STALL_REPUBLISHES = env.int("TTS_MAX_STALL_REPUBLISHES", default=3)
# ... and only once the re-sends have gone unanswered this long: a re-sent job waits behind the
# backlog of its class like any other, and a busy fleet is no fault.
TTS_STALLED_JOB_FAIL_AFTER_S = env.float("TTS_STALLED_JOB_FAIL_AFTER_S", default=1800.0)
# The watchdog re-sends a queued job with no event for this long (its message may have been
# lost before any agent took it); never fails it. 0 = off.
TTS_QUEUED_JOB_RESEND_AFTER_S = env.float("TTS_QUEUED_JOB_RESEND_AFTER_S", default=600.0)
# ... and at once when a later job of its class and voice has been running this long: agents
# take a topic in order, so its message went down with an agent or was lost. 0 = off.
TTS_QUEUED_JOB_OVERTAKEN_S = env.float("TTS_QUEUED_JOB_OVERTAKEN_S", default=15.0)
# The event consumer retries an event that hit a database error this many times (with a pause)
# before it stores it as an EventDeadLetter and moves on.
TTS_EVENT_APPLY_RETRIES = env.int("TTS_EVENT_APPLY_RETRIES", default=3)
# The media sweep removes audio files no job refers to once they are this old, every
# TTS_MEDIA_SWEEP_INTERVAL_S in the event consumer (0 = only `manage.py sweep_media_orphans`).
TTS_MEDIA_ORPHAN_AFTER_S = env.float("TTS_MEDIA_ORPHAN_AFTER_S", default=3600.0)
TTS_MEDIA_SWEEP_INTERVAL_S = env.float("TTS_MEDIA_SWEEP_INTERVAL_S", default=600.0)
# Request rates per user and scope ("<count>/<s|min|hour|day>"; empty = unlimited), counted
# in the shared cache: a batch counts one per job in `submit`.
TTS_THROTTLE_RATES = {
    "submit": env.str("TTS_THROTTLE_SUBMIT", default="120/min"),
    "validate": env.str("TTS_THROTTLE_VALIDATE", default="60/min"),
    "read": env.str("TTS_THROTTLE_READ", default="1200/min"),
}
# Per-user quotas (a staff user overrides them per user in the admin): jobs queued or running
# at once, and characters submitted per UTC day (1,000,000 is about 20 hours of speech).
TTS_QUOTA_MAX_ACTIVE_JOBS = env.int("TTS_QUOTA_MAX_ACTIVE_JOBS", default=100)
TTS_QUOTA_MAX_CHARS_PER_DAY = env.int("TTS_QUOTA_MAX_CHARS_PER_DAY", default=1_000_000)
# Finished jobs and their audio are deleted this many days after they finish (0 = keep);
# the event consumer purges every TTS_RETENTION_INTERVAL_S (0 = only `manage.py purge_expired`).
TTS_RETENTION_DAYS = env.float("TTS_RETENTION_DAYS", default=30)
TTS_RETENTION_INTERVAL_S = env.float("TTS_RETENTION_INTERVAL_S", default=3600)
# An Idempotency-Key is remembered this long (0 = forever); the same housekeeping purges it.
TTS_IDEMPOTENCY_KEY_TTL_HOURS = env.float("TTS_IDEMPOTENCY_KEY_TTL_HOURS", default=24)
# /metrics and the detailed /readyz body: only for clients in these networks (Prometheus'
# network in docker-compose) or presenting `Authorization: Bearer <TTS_METRICS_TOKEN>`.
TTS_MONITORING_NETWORKS = env.list("TTS_MONITORING_NETWORKS", default=["127.0.0.0/8", "::1/128"])
TTS_METRICS_TOKEN = env.str("TTS_METRICS_TOKEN", default="")
# A full batch (TTS_MAX_BATCH_CHARS) of non-ASCII text is several MB of JSON; larger bodies
# get a 413 before any parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=8 * 1024 * 1024)

# --- Logging --------------------------------------------------------------------------------

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {"format": "%(asctime)s %(levelname)s %(name)s [pid %(process)d] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "default"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"level": "INFO", "propagate": True},
        # 5xx with the request line and traceback.
        "django.request": {"level": "WARNING", "propagate": True},
        # The pulsar C++ client logs every connection step at INFO; keep only problems.
        "pulsar": {"level": "WARNING", "propagate": True},
        "gateway": {"level": LOG_LEVEL, "propagate": True},
    },
}

# --- Live updates and streaming (docs/STREAMING.md) ---------------------------------------------
# A comment line on every idle SSE stream this often; streams also re-read the job then.
TTS_SSE_KEEPALIVE_S = env.float("TTS_SSE_KEEPALIVE_S", default=15.0)
# OpenAI voice name -> voice id, e.g. TTS_OPENAI_VOICES=alloy=en_US-joe-medium,nova=...;
# unnamed OpenAI voices map to TTS_DEFAULT_VOICE.
TTS_OPENAI_VOICES = env.dict("TTS_OPENAI_VOICES", default={})
