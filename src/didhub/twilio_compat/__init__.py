"""A Twilio-compatible number API (docs/twilio-compat.md): an edge over didhub\x27s own services."""
