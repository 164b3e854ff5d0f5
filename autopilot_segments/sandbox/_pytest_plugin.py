"""pytest fixtures for the sandbox (under construction)."""
