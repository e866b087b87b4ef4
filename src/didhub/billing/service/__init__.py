"""Billing's rules, one module per concern: ``renewals`` (the billing run,
settling an account, top-ups), ``collection`` (collecting due periods, set-based),
``dunning`` (suspension and release for non-payment), ``usage`` (rating and posting
calls), ``rating``, ``resale`` (partners paid by their tenants), ``assignments``
(what a number serves, with its resale), ``invoices`` and ``books`` (the ledger
check's billing half)."""
