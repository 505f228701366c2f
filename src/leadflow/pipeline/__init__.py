"""Pipeline stages and the pipeline summary."""
