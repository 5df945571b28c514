"""Market-data feed and OHLCV candles."""
