"""A table that test handlers write to, so a test can count how often an effect happened."""

from django.db import models


class Effect(models.Model):
    event_id = models.CharField(max_length=64)
    key = models.CharField(max_length=64)
    seq = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "test_effects"

    def __str__(self) -> str:
        return f"{self.key}#{self.seq}"
