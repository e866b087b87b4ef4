"""Payment gateways: how a wallet is topped up from a card."""
