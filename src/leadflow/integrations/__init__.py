"""Integrations: an organisation's own SMTP relay, OpenAI account and Twilio account (tested
on connect, credentials encrypted at rest), used instead of the process-wide settings."""
