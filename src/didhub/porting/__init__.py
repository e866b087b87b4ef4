"""Porting numbers in (port-in orders) and noticing numbers ported away (docs/porting.md)."""
