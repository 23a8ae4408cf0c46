"""Staff: accounts, login with a second factor, roles and sites, and the staff pages."""

from . import auth, exports, paper, review, syncing, tokens, views  # noqa: F401 - the modules register their routes
from .blueprint import bp

__all__ = ["bp"]
