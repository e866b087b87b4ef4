"""The number lifecycle: search, quote, order, inventory, assign, release."""
