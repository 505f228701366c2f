"""Users of an organisation."""
