"""How sleuth writes a moment as text: ISO-8601 in UTC with a `Z`.

One helper for every layer (web answers, worker registry, command output), so a time reads
the same wherever it is shown. It lives at the top of the package because `observe/` and
`web/` both use it and neither should import the other for it."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(ts: float) -> str:
    """Epoch seconds → ISO-8601 UTC with a `Z`: `2023-11-14T22:13:00Z`, with milliseconds
    only when there are some (`2023-11-14T22:13:00.250Z`). Both are RFC 3339 date-times."""
    moment = datetime.fromtimestamp(ts, UTC)
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")
