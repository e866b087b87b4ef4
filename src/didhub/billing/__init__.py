"""The ledger, wallets and (later) renewals, usage and invoices."""
