"""Settings of portfolio_svc: wiring only. Shared defaults and the environment come from common.settings."""

from decimal import Decimal
from pathlib import Path

from common.settings import env, service_settings

BASE_DIR = Path(__file__).resolve().parent.parent

globals().update(service_settings(name="portfolio_svc", base_dir=BASE_DIR, apps=["portfolios"]))

PLATFORM_CONSUMERS = "portfolios.handlers.CONSUMERS"

# The paper funds a new user's default portfolio starts with.
PORTFOLIO_STARTING_ASSET = env.str("PORTFOLIO_STARTING_ASSET", default="USDT")
PORTFOLIO_STARTING_FUNDS = Decimal(env.str("PORTFOLIO_STARTING_FUNDS", default="10000"))
# The currency valuations are expressed in (last prices of <ASSET><VALUATION_ASSET> pairs).
PORTFOLIO_VALUATION_ASSET = env.str("PORTFOLIO_VALUATION_ASSET", default="USDT")
# The fees order_svc charges (its variables, read here too): GET /api/v3/account reports them as Binance does.
ORDER_MAKER_FEE_RATE = Decimal(env.str("ORDER_MAKER_FEE_RATE", default="0.001"))
ORDER_TAKER_FEE_RATE = Decimal(env.str("ORDER_TAKER_FEE_RATE", default="0.001"))
