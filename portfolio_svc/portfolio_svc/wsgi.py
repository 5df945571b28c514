"""WSGI entry point of portfolio_svc."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portfolio_svc.settings")
application = get_wsgi_application()
