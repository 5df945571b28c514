"""Serializers of the candles API: the browsable candle objects and their query."""

from __future__ import annotations

from rest_framework import serializers

from candles.intervals import INTERVALS


class CandleQuerySerializer(serializers.Serializer):
    symbol = serializers.RegexField(r"^[A-Z0-9\-_.]{1,20}$", max_length=20)
    interval = serializers.ChoiceField(choices=list(INTERVALS), default="1m")
    start = serializers.DateTimeField(required=False, help_text="open_time at or after (ISO 8601)")
    end = serializers.DateTimeField(required=False, help_text="open_time at or before (ISO 8601)")
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=500)

    def validate(self, attrs):
        if "start" in attrs and "end" in attrs and attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"start": "start is after end."})
        return attrs


class CandleSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    interval = serializers.CharField(source="interval_name")
    open_time = serializers.DateTimeField()
    close_time = serializers.DateTimeField()
    open = serializers.DecimalField(max_digits=38, decimal_places=18, coerce_to_string=True, normalize_output=True)
    high = serializers.DecimalField(max_digits=38, decimal_places=18, coerce_to_string=True, normalize_output=True)
    low = serializers.DecimalField(max_digits=38, decimal_places=18, coerce_to_string=True, normalize_output=True)
    close = serializers.DecimalField(max_digits=38, decimal_places=18, coerce_to_string=True, normalize_output=True)
    volume = serializers.DecimalField(max_digits=38, decimal_places=18, coerce_to_string=True, normalize_output=True)
    quote_volume = serializers.DecimalField(
        max_digits=38, decimal_places=18, coerce_to_string=True, normalize_output=True
    )
    trades = serializers.IntegerField()
    taker_buy_volume = serializers.DecimalField(
        max_digits=38, decimal_places=18, coerce_to_string=True, normalize_output=True
    )
    taker_buy_quote_volume = serializers.DecimalField(
        max_digits=38, decimal_places=18, coerce_to_string=True, normalize_output=True
    )
