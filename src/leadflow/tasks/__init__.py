"""Tasks: to-dos for users, optionally about a lead."""
