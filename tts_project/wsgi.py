"""WSGI entry point for gunicorn: `gunicorn tts_project.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tts_project.settings.base")

application = get_wsgi_application()
