"""WSGI entry point of order_svc."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "order_svc.settings")
application = get_wsgi_application()
