"""structlog JSON logs; the request id and service name are in every line.

Lines go to stderr, or, under the fleet runner (``REFACTORBOT_LOG_FILE`` set), to the
process's size-rotated log file (services.kit.logfile). Every line passes
:func:`redact_event` first: logs never carry message contents, tool arguments, headers
or anything shaped like a key.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from typing import TYPE_CHECKING, Any

import structlog
from structlog.typing import EventDict

from services.kit.context import request_id_var
from services.kit.logfile import RotatingLogFile, log_file_from_env, open_log_file
from services.kit.redact import REDACTED, SECRET_KEY, SECRET_VALUE, redact

if TYPE_CHECKING:
    from services.kit.config import LoggingSettings

# Fields whose values are what users wrote or what unlocks something: never logged.
_SENSITIVE_KEY = re.compile(
    SECRET_KEY.pattern
    + r"|content|message|argument|body|prompt|header|completion_text|input|payload",
    re.IGNORECASE,
)
_KEEP = frozenset({"event", "timestamp", "level", "service", "request_id", "logger"})
# A pydantic error's text echoes the input: "[type=..., input_value='...', input_type=str]"
_INPUT_VALUE = re.compile(r"input_value=.*?(?=, input_type=)", re.DOTALL)
_TRUSTED = frozenset({"timestamp", "level", "service", "logger"})  # set by us, not by callers
_SCALARS = (bool, int, float)
_CONTAINERS = (dict, list, tuple)
MAX_FIELD_CHARS = 4_000  # a longer string field is cut (a traceback keeps its end)


@functools.lru_cache(maxsize=1024)
def _sensitive(key: str) -> bool:
    if key in _KEEP or key.endswith(("_id", "_ids")):  # api_key_id names a key, is not one
        return False
    return _SENSITIVE_KEY.search(key) is not None


def _scrub_text(text: str, *, keep_end: bool = False) -> str:
    if SECRET_VALUE.search(text) is not None:
        text = SECRET_VALUE.sub(REDACTED, text)
    if "input_value=" in text:
        text = _INPUT_VALUE.sub("input_value=" + REDACTED, text)
    if len(text) > MAX_FIELD_CHARS:
        cut = len(text) - MAX_FIELD_CHARS
        return (
            f"[{cut} chars cut] " + text[-MAX_FIELD_CHARS:]
            if keep_end
            else text[:MAX_FIELD_CHARS] + f" [{cut} chars cut]"
        )
    return text


def redact_event(_: Any, __: str, event: EventDict) -> EventDict:
    """Drop fields named like contents or credentials; scrub secret shapes everywhere else.

    Counts and flags stay (``prompt_tokens=12``, ``messages=3`` are not contents). Cheap
    on the hot path: a cached decision per field name, one regex search per string."""
    for key, value in event.items():
        if type(value) is str:
            if key in _TRUSTED:
                continue
            event[key] = (
                REDACTED if _sensitive(key) else _scrub_text(value, keep_end=key == "exception")
            )
        elif value is None or isinstance(value, _SCALARS):
            continue
        elif _sensitive(key):
            event[key] = REDACTED
        elif isinstance(value, _CONTAINERS):
            event[key] = redact(value, keys=_SENSITIVE_KEY, keep_numbers=True)
        else:
            event[key] = _scrub_text(str(value))
    return event


def _add_request_id(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    rid = request_id_var.get()
    if rid is not None:
        event.setdefault("request_id", rid)
    return event


class _FileLogger:
    """structlog's final logger: one rendered line into the rotating log file."""

    def __init__(self, file: RotatingLogFile) -> None:
        self._write = file.write_line

    def msg(self, message: str) -> None:
        self._write(message)

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def configure_logging(
    service: str, level: str = "INFO", rotation: LoggingSettings | None = None
) -> RotatingLogFile | None:
    """Route structlog and the standard library (uvicorn, alembic) to JSON lines: into the
    rotating file named by ``REFACTORBOT_LOG_FILE`` when set (returned), else to stderr."""
    path = log_file_from_env()
    file = None
    if path is not None:
        if rotation is None:
            from services.kit.config import LoggingSettings

            rotation = LoggingSettings()
        file = open_log_file(path, max_bytes=rotation.max_bytes, backup_count=rotation.backup_count)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        lambda _, __, ev: {**ev, "service": service},
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            redact_event,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=(
            (lambda *_: _FileLogger(file))
            if file is not None
            else structlog.PrintLoggerFactory(file=sys.stderr)
        ),
        cache_logger_on_first_use=True,
    )
    handler: logging.Handler = file if file is not None else logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_event,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # A line per outgoing request (httpx at INFO) is noise on the hot path, with URLs in it.
    for name in ("httpx", "httpcore", "hpack"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return file


def get_logger(**bindings: Any) -> Any:
    return structlog.get_logger(**bindings)
