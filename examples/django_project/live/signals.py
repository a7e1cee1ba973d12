"""Receivers (filled in with the live notes)."""
