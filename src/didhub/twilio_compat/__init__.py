"""A Twilio-compatible number API (docs/twilio-compat.md), on didhub's own services."""
