"""Importing existing customers from CSV, JSON or XLSX."""
