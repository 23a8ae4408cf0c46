"""The participant's pages: invite link, overview, questionnaire pages, review, receipt."""

from .views import bp

__all__ = ["bp"]
