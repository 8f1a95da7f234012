"""Settings shared by every environment.

The embedded default (no configuration) runs on SQLite, the in-memory channel layer and in-process
background work. Setting DATABASE_URL and REDIS_URL switches the same code to Postgres + pgvector,
channels-redis and Celery workers: nothing else branches on it.
"""

from pathlib import Path

import dj_database_url

from .env import env_bool, env_float, env_int, env_list, env_paths, env_str
from .mail import *  # noqa: F403  (email backend, inbound webhook secrets, MailWorker limits)
from .proxy import proxy_upstreams, proxy_url
from .redis import redis_retry_options
from .vectors import *  # noqa: F403  (embeddings, chunking, HNSW and Indexer settings)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("MESHSITE_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rooms",
    "toolkits",
    "agents",
    "threads",
    "observability",
    "queues",
    "files",
    "vectors",
    "mail",
    "voice",
    "studio",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "meshsite.urls"
ASGI_APPLICATION = "meshsite.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# --- Database: SQLite by default, DATABASE_URL (postgres://…) for scale-out.
DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    # Connections are kept (with a liveness check when a call reuses one): the mesh runs its
    # database work on one long-lived thread, and a new Postgres connection per call cost ~7 ms
    # of each (0.26 ms kept). Django's per-request threads still end with their connection.
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("MESHSITE_DB_CONN_MAX_AGE", 60, minimum=0),
            conn_health_checks=True,
        )
    }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("MESHSITE_SQLITE_PATH", str(VAR_DIR / "meshsite.sqlite3")),
            # Kept open per thread: the mesh runs its database work on one thread, and opening
            # the file again (with the PRAGMAs below) on every call cost ~0.4 ms of each.
            "CONN_MAX_AGE": None,
            # WAL + IMMEDIATE keep the web process, the agent host and background work from
            # tripping over each other's locks on the embedded default.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
# Serve static files straight from the source folders, so the embedded default needs no
# collectstatic; production runs collectstatic and whitenoise serves STATIC_ROOT.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
LOGIN_URL = "login"  # the Studio sign-in page (studio/views/auth.py)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("MESHSITE_LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}

# --- Meshsite: protocol limits and room behaviour (see docs/configuration.md).
MESHSITE_PUBLIC_URL = env_str("MESHSITE_PUBLIC_URL", "")
MESHSITE_TOKEN_SECRET = env_str("MESHSITE_TOKEN_SECRET", "")
MESHSITE_TOKEN_DEFAULT_TTL = env_int("MESHSITE_TOKEN_DEFAULT_TTL", 3600, minimum=1)
MESHSITE_TOKEN_MAX_TTL = env_int("MESHSITE_TOKEN_MAX_TTL", 30 * 24 * 3600, minimum=1)
MESHSITE_ALLOWED_ORIGINS = env_list("MESHSITE_ALLOWED_ORIGINS", [])
MESHSITE_MAX_FRAME_BYTES = env_int("MESHSITE_MAX_FRAME_BYTES", 1024 * 1024, minimum=1024)
MESHSITE_MAX_ATTRIBUTES_BYTES = env_int("MESHSITE_MAX_ATTRIBUTES_BYTES", 16 * 1024, minimum=64)
MESHSITE_RATE_PER_SECOND = env_float("MESHSITE_RATE_PER_SECOND", 200.0, minimum=0.1)
MESHSITE_RATE_BURST = env_int("MESHSITE_RATE_BURST", 400, minimum=1)
MESHSITE_FLOOD_CLOSE_AFTER = env_int("MESHSITE_FLOOD_CLOSE_AFTER", 200, minimum=1)
MESHSITE_DEFAULT_TIMEOUT = env_float("MESHSITE_DEFAULT_TIMEOUT", 60.0, minimum=0.01)
MESHSITE_MAX_TIMEOUT = env_float("MESHSITE_MAX_TIMEOUT", 600.0, minimum=0.01)
MESHSITE_MAX_TOOLKITS_PER_PARTICIPANT = env_int("MESHSITE_MAX_TOOLKITS_PER_PARTICIPANT", 64, minimum=1)
MESHSITE_MAX_TOOLKITS_PER_ROOM = env_int("MESHSITE_MAX_TOOLKITS_PER_ROOM", 512, minimum=1)
# What one participant's toolkit definitions may add up to (descriptions and schemas).
MESHSITE_MAX_HOSTED_BYTES = env_int("MESHSITE_MAX_HOSTED_BYTES", 1024 * 1024, minimum=1024)
# Bytes a connection may send per second on average (requests and unsolicited answers), and burst.
MESHSITE_RATE_BYTES_PER_SECOND = env_int("MESHSITE_RATE_BYTES_PER_SECOND", 8 * 1024 * 1024, minimum=1024)
MESHSITE_RATE_BYTES_BURST = env_int("MESHSITE_RATE_BYTES_BURST", 16 * 1024 * 1024, minimum=1024)
# A participant whose unread outgoing bytes pass this is disconnected (4413, "slow reader").
MESHSITE_MAX_OUTGOING_BUFFER_BYTES = env_int("MESHSITE_MAX_OUTGOING_BUFFER_BYTES", 8 * 1024 * 1024, minimum=65536)
# Seconds one schema validation may take on the validation thread (the loop gives it ~2 ms).
MESHSITE_SCHEMA_SECONDS = env_float("MESHSITE_SCHEMA_SECONDS", 1.0, minimum=0.01)
MESHSITE_LEDGER_FLUSH_SECONDS = env_float("MESHSITE_LEDGER_FLUSH_SECONDS", 0.5, minimum=0.01)
MESHSITE_LEDGER_BATCH_SIZE = env_int("MESHSITE_LEDGER_BATCH_SIZE", 2000, minimum=1)
MESHSITE_NODE_HEARTBEAT_SECONDS = env_float("MESHSITE_NODE_HEARTBEAT_SECONDS", 2.0, minimum=0.1)
MESHSITE_WS_PING_INTERVAL = env_int("MESHSITE_WS_PING_INTERVAL", 20, minimum=1)
MESHSITE_WS_PING_TIMEOUT = env_int("MESHSITE_WS_PING_TIMEOUT", 30, minimum=1)
MESHSITE_AGENT_HOST_POLL_SECONDS = env_float("MESHSITE_AGENT_HOST_POLL_SECONDS", 0.3, minimum=0.01)
MESHSITE_AGENT_HOST_STALE_SECONDS = env_float("MESHSITE_AGENT_HOST_STALE_SECONDS", 10.0, minimum=1)
MESHSITE_AGENT_CALL_TIMEOUT = env_float("MESHSITE_AGENT_CALL_TIMEOUT", 30.0, minimum=0.1)
# Lifetime of the tokens the agent host mints for its agents; they are refreshed before expiry.
MESHSITE_AGENT_TOKEN_TTL = env_int("MESHSITE_AGENT_TOKEN_TTL", 3600, minimum=1)
# Directories put in front of sys.path before a service's class path is imported (agent host,
# admin, `mesh create-service`), for agent code that is not installed: `/srv/agents:/opt/more`.
MESHSITE_AGENT_PATHS = env_paths("MESHSITE_AGENT_PATHS", [])
# Seconds before daphne closes any WebSocket regardless of activity; -1: never (tokens expire).
MESHSITE_WS_MAX_AGE = env_int("MESHSITE_WS_MAX_AGE", -1, minimum=-1)
# Cost (docs/billing.md): the one currency of every price, cost and budget on this server, and the
# seconds a budget reservation (usage.reserve) holds its amount before it is released unsettled.
MESHSITE_CURRENCY = env_str("MESHSITE_CURRENCY", "USD")
MESHSITE_BUDGET_RESERVATION_SECONDS = env_int("MESHSITE_BUDGET_RESERVATION_SECONDS", 600, minimum=1)
# Seconds each process keeps the price table in memory; an edit in another process (the admin)
# applies after at most this long (at once in the process that made it). 0: read on every use.
MESHSITE_PRICE_CACHE_SECONDS = env_float("MESHSITE_PRICE_CACHE_SECONDS", 10.0, minimum=0)
# The metering proxy (/v1/…, docs/billing.md "Metering proxy"): the OpenAI-compatible upstream it
# forwards to (empty URL: the proxy answers 503), per-project overrides as JSON, the read timeout,
# which token roles may use it, the output tokens a reservation assumes when a request sets no
# max_tokens, the largest request body, and the threads that do its database work.
MESHSITE_PROXY_UPSTREAM_URL = proxy_url(env_str("MESHSITE_PROXY_UPSTREAM_URL", ""))
MESHSITE_PROXY_UPSTREAM_KEY = env_str("MESHSITE_PROXY_UPSTREAM_KEY", "")
MESHSITE_PROXY_UPSTREAMS = proxy_upstreams(env_str("MESHSITE_PROXY_UPSTREAMS", ""))
MESHSITE_PROXY_TIMEOUT = env_float("MESHSITE_PROXY_TIMEOUT", 600.0, minimum=1)
MESHSITE_PROXY_ROLES = env_list("MESHSITE_PROXY_ROLES", ["agent", "service"])
MESHSITE_PROXY_DEFAULT_OUTPUT_TOKENS = env_int("MESHSITE_PROXY_DEFAULT_OUTPUT_TOKENS", 4096, minimum=1)
MESHSITE_PROXY_MAX_REQUEST_BYTES = env_int("MESHSITE_PROXY_MAX_REQUEST_BYTES", 32 * 1024 * 1024, minimum=1024)
MESHSITE_PROXY_DB_THREADS = env_int("MESHSITE_PROXY_DB_THREADS", 8, minimum=1)
# Seconds a credential the proxy has checked (and "no budget applies to it") is taken as it was.
MESHSITE_PROXY_CACHE_SECONDS = env_float("MESHSITE_PROXY_CACHE_SECONDS", 5.0, minimum=0)
# The largest queue message body, as compact UTF-8 JSON (docs/queues.md).
MESHSITE_QUEUE_MAX_MESSAGE_BYTES = env_int("MESHSITE_QUEUE_MAX_MESSAGE_BYTES", 256 * 1024, minimum=1024)

# Room storage (docs/storage.md): file contents live in the `files` storage backend (a filesystem
# folder by default; replace STORAGES["files"] for S3 and the like), up to this many bytes a file;
# the `storage` toolkit's write takes inline contents up to MESHSITE_STORAGE_INLINE_MAX_BYTES.
MESHSITE_STORAGE_DIR = Path(env_str("MESHSITE_STORAGE_DIR", str(VAR_DIR / "files")))
MESHSITE_STORAGE_MAX_BYTES = env_int("MESHSITE_STORAGE_MAX_BYTES", 1024 * 1024 * 1024, minimum=1)
MESHSITE_STORAGE_INLINE_MAX_BYTES = env_int("MESHSITE_STORAGE_INLINE_MAX_BYTES", 512 * 1024, minimum=1)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "files": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MESHSITE_STORAGE_DIR), "file_permissions_mode": 0o600},
    },
}

# --- Redis: channel layer, mesh bus, Celery broker. Unset: in-memory layer, in-process work.
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "rooms.channel_layer.ResilientRedisPubSubChannelLayer",
            "CONFIG": {
                # Pooled connections go stale when Redis restarts: retry on a fresh one.
                "hosts": [{"address": REDIS_URL, **redis_retry_options(attempts=5)}],
                "prefix": env_str("MESHSITE_REDIS_PREFIX", "meshsite"),
            },
        }
    }
else:
    # The in-memory layer silently drops sends to a full channel (default capacity 100); each
    # node reads its one channel continuously, so a large capacity means nothing is dropped.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 100_000}}}
MESHSITE_REDIS_PREFIX = env_str("MESHSITE_REDIS_PREFIX", "meshsite")

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
# Without a broker, background work runs in-process at enqueue time (the embedded default).
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# One queue and key prefix per deployment (and per test session), like the channel layer's prefix.
CELERY_TASK_DEFAULT_QUEUE = env_str("MESHSITE_CELERY_QUEUE", f"{MESHSITE_REDIS_PREFIX}.tasks")
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"{MESHSITE_REDIS_PREFIX}.celery."}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers (agents/workers.py): the web node Celery-run Worker agents connect to (default: the
# public URL, else this machine's port 8000), and seconds an idle Worker stays in its room.
MESHSITE_WORKER_URL = env_str("MESHSITE_WORKER_URL", "")
MESHSITE_WORKER_IDLE_SECONDS = env_float("MESHSITE_WORKER_IDLE_SECONDS", 30.0, minimum=0)
MESHSITE_WORKER_SWEEP_SECONDS = env_float("MESHSITE_WORKER_SWEEP_SECONDS", 2.0, minimum=0.1)
# Seconds a Celery pool process keeps its database connection between tasks (0: one per task);
# Celery's Django fixup would otherwise close it around every task (it reuses it for this many).
MESHSITE_CELERY_DB_CONN_MAX_AGE = env_int("MESHSITE_CELERY_DB_CONN_MAX_AGE", 300, minimum=0)
CELERY_DB_REUSE_MAX = 1000 if MESHSITE_CELERY_DB_CONN_MAX_AGE else None
