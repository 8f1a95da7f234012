"""Subjects: a reply's `Re:` (never `Re: Re:`), and a conversation's thread title."""

import re

# Reply prefixes as mail programs write them: Re, RE, re[2], Aw (German), Sv (Nordic), Antw (Dutch).
REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|aw|sv|antw|ynt)(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*)+", re.IGNORECASE)
MAX_TITLE = 200


def base_subject(subject: str) -> str:
    return REPLY_PREFIX.sub("", " ".join(subject.split()))


def reply_subject(subject: str) -> str:
    base = base_subject(subject)
    return f"Re: {base}" if base else "Re: (no subject)"


def thread_title(subject: str) -> str:
    return (base_subject(subject) or "(no subject)")[:MAX_TITLE]
