"""Webhooks: organisations subscribe endpoints to domain events; the worker delivers them from
the database, signed per the Standard Webhooks specification, in order per subject, retried
with exponential backoff, every attempt logged."""
