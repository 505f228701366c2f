"""Automatic assignment: ordered rules, round robin, least loaded, fixed user or team."""
