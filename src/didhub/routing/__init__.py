"""Inbound routing lookup for the SIP edge."""
