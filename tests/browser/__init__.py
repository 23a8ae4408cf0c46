"""Browser tests of the participant pages (real gunicorn server, Debian chromium)."""
