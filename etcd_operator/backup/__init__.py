"""Snapshot streaming and backup destinations (later issue)."""
