"""Work on a lead: interactions and message events."""
