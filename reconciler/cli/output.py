"""The command line's errors and warnings for the person running it, through the log handler.

They go to stderr as ``Error: ...`` / ``Warning: ...`` lines, or as JSON objects with
``--log-format json``, redacted like every other record (see :mod:`reconciler.logs`). Results
(plans, reports, summaries) are not messages: commands print those to stdout themselves.
"""

from __future__ import annotations

import logging
from typing import Any

from reconciler.logs import USER_LOGGER, configure_logging, is_configured

_log = logging.getLogger(USER_LOGGER)


def _ready() -> logging.Logger:
    if not is_configured():  # a failure before the group's options were read
        configure_logging(0)
    return _log


def error(message: str, **fields: Any) -> None:
    """``Error: message`` on stderr; ``fields`` become structured fields of a JSON log line."""
    _ready().error("%s", message, extra=fields)


def warn(message: str, **fields: Any) -> None:
    """``Warning: message`` on stderr, shown at the default verbosity."""
    _ready().warning("%s", message, extra=fields)
