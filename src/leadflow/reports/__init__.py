"""Reports: a published field catalogue, saved definitions, exports and scheduled runs."""
