"""The JSON API (/api/v1): participants, assessments, responses and exports, by token."""

from . import exports, openapi, people, responses  # noqa: F401 - the modules add their routes
from .blueprint import bp

__all__ = ["bp"]
