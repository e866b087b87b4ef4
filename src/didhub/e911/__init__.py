"""E911: emergency addresses, locations, provisioning on numbers, compliance."""
