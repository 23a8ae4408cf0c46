"""Staff: accounts, login with a second factor, roles and sites, and the staff pages."""

from . import (  # noqa: F401 - the modules register their routes
    auth,
    changes,
    exports,
    paper,
    paper_print,
    review,
    syncing,
    tokens,
    views,
)
from .blueprint import bp

__all__ = ["bp"]
