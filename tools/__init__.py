"""Development tools run by the Makefile."""
