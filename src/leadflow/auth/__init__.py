"""Authentication: passwords, tokens, sessions, API keys, the current actor."""
