"""Destinations: one sub-package per platform that segments are exported to (Autopilot's still lives flat)."""
