"""Events and webhooks: the public event catalogue, the outbox that records
events and queues deliveries in the same transaction as the change, signed
delivery with retries, and the endpoints accounts register."""
