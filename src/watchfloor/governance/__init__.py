"""Governance: pseudonyms, keys, accounts, and (later) authorizations, audit and retention."""
