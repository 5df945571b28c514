"""Settings of portfolio_svc: wiring only. Shared defaults and the environment come from common.settings."""

from pathlib import Path

from common.settings import service_settings

BASE_DIR = Path(__file__).resolve().parent.parent

globals().update(service_settings(name="portfolio_svc", base_dir=BASE_DIR, apps=["portfolios"]))
