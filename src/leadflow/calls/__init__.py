"""Voice-AI call requests (seed 001): accept, respect business hours, call, log every step, book."""
