"""Partners, tenants, agents and API keys."""
