"""The market-data feed: sources of trades (replay, simulate, binance) and the Kafka publisher they feed."""
