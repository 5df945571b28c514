"""Orders and the order saga."""
