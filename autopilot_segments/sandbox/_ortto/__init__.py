"""A local Ortto-compatible server: the people, custom-field and audience calls a segment export needs."""
