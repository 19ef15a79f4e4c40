"""Webhook intake: the endpoint, durable deliveries, workers draining them through the router."""
