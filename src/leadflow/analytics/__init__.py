"""Analytics and the dashboard: set-based aggregates of leads and their history, always inside
the caller's row scope."""
