"""Production entry point: `gunicorn wsgi:app` (settings from instance/config.py and PRO_*).

Outside the demo it refuses to start with an unsafe configuration (a development secret key,
no base URL, debug on, no contact key); the error names each setting and how to fix it.
"""

from pro_app import create_app
from pro_app.startup import refuse_unsafe

app = refuse_unsafe(create_app())
