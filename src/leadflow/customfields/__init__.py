"""Custom field definitions and validation of lead values."""
