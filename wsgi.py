"""Production entry point: `gunicorn wsgi:app` (settings from instance/config.py and PRO_*)."""

from pro_app import create_app

app = create_app()
