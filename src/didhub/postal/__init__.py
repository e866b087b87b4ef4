"""US postal addresses in their standard (USPS) form, for E911 and the carriers."""
