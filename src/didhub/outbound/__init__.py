"""Outbound calls: SIP credentials, outbound trunks, the edge\x27s outbound lookup."""
