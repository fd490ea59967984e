"""Errors that end the ingest of one file (never the whole run)."""
from __future__ import annotations


class FileLevelError(Exception):
    """The whole file cannot be ingested; the message is the reason (one line, no path)."""
