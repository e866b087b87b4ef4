"""A Telnyx-compatible number API (docs/twilio-compat.md, "Telnyx"), on didhub's services."""
