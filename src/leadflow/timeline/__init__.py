"""One newest-first stream of everything that happened to a lead."""
