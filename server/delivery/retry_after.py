"""Reading a receiver's Retry-After header (RFC 9110 section 10.2.3): a number of seconds or
an HTTP date. The receiver is not trusted: whatever it sends, the answer is a delay or None
(ignored), never an exception."""

from __future__ import annotations

import email.utils
from datetime import UTC

# A delay longer than this is not a request we can honour but garbage (and 4,301 digits or
# more would not even convert to an int); the worker caps honoured delays much lower.
MAX_SECONDS = 365 * 24 * 3600


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from `now` (Unix seconds), or None when `value` is absent or is
    neither delay-seconds (ASCII digits only) nor an HTTP date. A date in the past is 0."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        # isdigit() also takes "²" and other digits float() refuses: ASCII only.
        if not value.isascii() or len(value.lstrip("0")) > len(str(MAX_SECONDS)):
            return None
        seconds = float(value)
        return seconds if seconds <= MAX_SECONDS else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = when.timestamp() - now
    if seconds > MAX_SECONDS:
        return None
    return max(0.0, seconds)
