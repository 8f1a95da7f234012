"""The settings read on every routed call, as plain attributes of one object.

Each `settings.X` read is a Python-level call (LazyObject.__getattribute__): a routed call read
nine of them, about 3 % of a node's CPU in bench/relay.py. The values are copied here once and
copied again whenever any setting changes (`override_settings` sends `setting_changed`), so tests
that change a limit see it at once.
"""

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


class Limits:
    max_frame_bytes: int
    max_outgoing_buffer_bytes: int
    default_timeout: float
    max_timeout: float
    ledger_batch_size: int

    def load(self) -> None:
        self.max_frame_bytes = settings.MESHSITE_MAX_FRAME_BYTES
        self.max_outgoing_buffer_bytes = settings.MESHSITE_MAX_OUTGOING_BUFFER_BYTES
        self.default_timeout = settings.MESHSITE_DEFAULT_TIMEOUT
        self.max_timeout = settings.MESHSITE_MAX_TIMEOUT
        self.ledger_batch_size = settings.MESHSITE_LEDGER_BATCH_SIZE


LIMITS = Limits()
LIMITS.load()


@receiver(setting_changed)
def _reload(**kwargs: Any) -> None:
    LIMITS.load()
