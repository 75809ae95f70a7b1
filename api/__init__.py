"""FastAPI service over the projections and the live log."""
