"""Keep invite tokens out of access logs (werkzeug's and gunicorn's)."""

from __future__ import annotations

import logging
import re

TOKEN_IN_PATH = re.compile(r"/i/[A-Za-z0-9_\-]{8,}")


class RedactTokens(logging.Filter):
    """Rewrite '/i/<token>' as '/i/[token]' in a log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/i/" in message:
            record.msg = TOKEN_IN_PATH.sub("/i/[token]", message)
            record.args = None
        return True


def init_app(app) -> None:
    for name in ("werkzeug", "gunicorn.access", "gunicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
