"""Unit tests of the download rules (stream.rules)."""
