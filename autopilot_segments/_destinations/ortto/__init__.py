"""Ortto: the client, its models, and the field dialect that turns mapped contacts into Ortto people."""
