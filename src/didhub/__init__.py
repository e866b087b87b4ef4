"""didhub: a phone-number (DID) platform for multi-tenant voice businesses."""

__version__ = "0.1.0"
