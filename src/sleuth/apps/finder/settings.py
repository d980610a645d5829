"""The finder's settings (`[finder]` in sleuth.toml, `SLEUTH_FINDER_*`): AOTF's limits and
schedules by default. Stdlib only: the app declaration imports it whenever settings load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NAME = "finder"


@dataclass(frozen=True)
class FinderSettings:
    """AOTF's `parameters.py`, where it had a counterpart."""

    # Addresses exempt from the per-address limits (AOTF's UNLIMITED_IP_ADDRESSES).
    unlimited_ips: tuple[str, ...] = ()
    # Addresses that may use /search (AOTF's ADVANCED_IP_ADDRESSES).
    advanced_ips: tuple[str, ...] = ("127.0.0.1", "::1")
    max_processing_per_ip: int = 10  # unfinished requests per address
    request_interval: float = 1.0  # seconds between two requests let through per address
    max_url_length: int = 256
    max_upload_bytes: int = 20 * 1024 * 1024
    update_days: float = 30.0  # accounts not scanned for this long are updated
    artwork_margin_days: float = 7.0  # an artwork newer than the last scan minus this: update
    max_distance: int = 12  # pHash bits that may differ for a match: the least that met
    # recall >= 98% with precision >= 99% in bench/finder.py (10 gave 95.8% recall)
    retry_images_hours: float = 6.0  # images whose download failed are tried again after this
    # A request still waiting after this many seconds ends with PROCESSING_ERROR.
    request_timeout: float = 6 * 3600.0
    # Accounts never reported (bots, large non-artists), as network:username.
    block_list: tuple[str, ...] = ()


def finder_settings() -> FinderSettings:
    """The finder's settings of the app serving this request."""
    from sleuth.web.context import current_services

    section: Any = current_services().settings.app(NAME)
    return section  # type: ignore[no-any-return]
