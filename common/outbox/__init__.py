"""The transactional outbox: publish() writes events in the caller's transaction; a Celery task relays them."""
