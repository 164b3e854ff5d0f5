"""A local Autopilot-compatible server: the contact, list, segment, field and hook calls of API v1."""
