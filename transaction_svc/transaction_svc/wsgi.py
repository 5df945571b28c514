"""WSGI entry point of transaction_svc."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "transaction_svc.settings")
application = get_wsgi_application()
