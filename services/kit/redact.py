"""Secrets out of what is written down: the tools' execution log and every service's logs."""

from __future__ import annotations

import re
from typing import Any

SECRET_KEY = re.compile(
    r"pass(word|wd)?|secret|token|api[_-]?key|authorization|cookie|credential|private[_-]?key",
    re.IGNORECASE,
)
SECRET_VALUE = re.compile(
    r"(sk-[A-Za-z0-9_-]{8,}|Bearer\s+\S+|gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}"
    r"|rb_[A-Za-z0-9_-]{20,})"  # rb_: our own API keys
)
REDACTED = "[redacted]"


def redact(value: Any, *, keys: re.Pattern[str] = SECRET_KEY, keep_numbers: bool = False) -> Any:
    """``value`` with the values under keys matching ``keys`` and secret-looking strings
    replaced by ``[redacted]``; with ``keep_numbers``, numbers (and None) under such keys
    are kept (``prompt_tokens=12`` is not a secret)."""
    if isinstance(value, dict):
        return {
            k: _mask(v, keep_numbers)
            if keys.search(str(k))
            else redact(v, keys=keys, keep_numbers=keep_numbers)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, keys=keys, keep_numbers=keep_numbers) for v in value]
    if isinstance(value, str):
        return SECRET_VALUE.sub(REDACTED, value)
    return value


def _mask(value: Any, keep_numbers: bool) -> Any:
    if keep_numbers and (value is None or isinstance(value, int | float)):
        return value
    return REDACTED
