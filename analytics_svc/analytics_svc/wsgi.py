"""WSGI entry point of analytics_svc."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_svc.settings")
application = get_wsgi_application()
