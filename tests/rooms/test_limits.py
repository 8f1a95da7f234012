"""meshsite.limits: the settings every routed call reads, kept as plain attributes."""

from django.conf import settings
from django.test import override_settings

from meshsite.limits import LIMITS


def test_limits_follow_the_settings_and_any_change_to_them() -> None:
    assert LIMITS.max_frame_bytes == settings.MESHSITE_MAX_FRAME_BYTES
    assert LIMITS.max_timeout == settings.MESHSITE_MAX_TIMEOUT
    with override_settings(MESHSITE_MAX_FRAME_BYTES=1234, MESHSITE_LEDGER_BATCH_SIZE=7):
        assert (LIMITS.max_frame_bytes, LIMITS.ledger_batch_size) == (1234, 7)
    assert LIMITS.max_frame_bytes == settings.MESHSITE_MAX_FRAME_BYTES
    assert LIMITS.ledger_batch_size == settings.MESHSITE_LEDGER_BATCH_SIZE
