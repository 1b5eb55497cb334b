"""Timestamps as the database stores them: UTC, ISO 8601, milliseconds."""

from datetime import datetime, timezone


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
