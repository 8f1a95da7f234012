"""Email: the outgoing backend (SMTP or an ESP through django-anymail), the inbound webhooks'
secrets, and the MailWorker's limits (docs/mail.md).

The embedded default sends replies over SMTP to 127.0.0.1:1025, where `manage.py mailsink` shows
them; pointing at a real ESP is a matter of environment variables:

    MESHSITE_EMAIL_BACKEND=anymail.backends.mailgun.EmailBackend MAILGUN_API_KEY=… \
    MAILGUN_SENDER_DOMAIN=mail.example.com MAILGUN_WEBHOOK_SIGNING_KEY=… \
    ANYMAIL_WEBHOOK_SECRET=user:long-random-password
"""

from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_float, env_int, env_str


def basic_auth_pairs(name: str) -> list[str]:
    """`user:password` pairs separated by commas (two during a rotation); each needs a user, a
    password of at least 16 characters and no whitespace, or start-up stops."""
    raw = env_str(name, "").strip()
    if not raw:
        return []
    pairs = [item.strip() for item in raw.split(",")]
    for pair in pairs:
        user, colon, password = pair.partition(":")
        if not colon or not user or len(password) < 16 or any(c.isspace() for c in pair):
            raise ImproperlyConfigured(
                f"{name} must be 'user:password' pairs (comma-separated) with a password of at least 16 characters"
            )
    return pairs


EMAIL_BACKEND = env_str("MESHSITE_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", 1025, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive: set one")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "meshsite@localhost")

# Inbound webhooks (anymail): the basic-auth pairs every ESP webhook must present, Mailgun's
# signing key; outgoing ESP credentials for the anymail backend chosen above.
ANYMAIL = {
    "WEBHOOK_SECRET": basic_auth_pairs("ANYMAIL_WEBHOOK_SECRET"),
    "MAILGUN_WEBHOOK_SIGNING_KEY": env_str("MAILGUN_WEBHOOK_SIGNING_KEY", ""),
    "MAILGUN_API_KEY": env_str("MAILGUN_API_KEY", ""),
    "MAILGUN_SENDER_DOMAIN": env_str("MAILGUN_SENDER_DOMAIN", ""),
    "POSTMARK_SERVER_TOKEN": env_str("POSTMARK_SERVER_TOKEN", ""),
}

# The largest inbound message (its raw MIME) accepted; larger ones get 413 and nothing is stored.
MESHSITE_MAIL_MAX_BYTES = env_int("MESHSITE_MAIL_MAX_BYTES", 25 * 1024 * 1024, minimum=1024)
# Messages one sender may send one mailbox per hour before the rest are refused (0: no limit),
# unless the mailbox sets its own.
MESHSITE_MAIL_RATE_PER_HOUR = env_int("MESHSITE_MAIL_RATE_PER_HOUR", 20, minimum=0)
# Seconds one processing attempt may hold an inbound message before another may take it over.
MESHSITE_MAIL_PROCESS_SECONDS = env_float("MESHSITE_MAIL_PROCESS_SECONDS", 600.0, minimum=1)
# Every this many seconds, Celery workers enqueue again the messages whose task was lost (mail/sweep.py).
MESHSITE_MAIL_SWEEP_SECONDS = env_float("MESHSITE_MAIL_SWEEP_SECONDS", 10.0, minimum=0.1)
# Seconds a queued message waits for its task before a sweep enqueues it again.
MESHSITE_MAIL_REQUEUE_SECONDS = env_float("MESHSITE_MAIL_REQUEUE_SECONDS", 60.0, minimum=1)
# The embedded default (no broker): whether the web process runs the sweep once mail has arrived.
MESHSITE_MAIL_SWEEP_IN_PROCESS = env_bool("MESHSITE_MAIL_SWEEP_IN_PROCESS", True)
