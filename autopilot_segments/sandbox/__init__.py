"""A local Autopilot-compatible server (under construction)."""
