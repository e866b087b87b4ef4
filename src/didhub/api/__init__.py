"""The REST API: thin routers over the domain services."""
