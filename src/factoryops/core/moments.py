"""Dates and times that come in through the API, bounded to what every store can hold.

Python's datetime spans the years 1-9999, so an edge value with a UTC offset
(``0001-01-01T00:00+00:01``) overflows as soon as it is turned into UTC, and the stores hold
less still (InfluxDB and pandas count nanoseconds from 1970 in 64 bits: 1677-2262). Every
date a client sends is therefore checked to lie in [1900-01-01, 2200-01-01) UTC; outside it the
request is refused with a 422 that names the field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def check_moment(value: datetime) -> datetime:
    """``value`` unchanged if it lies in the supported range (a naive value is taken as UTC)."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError("must be between 1900-01-01 and 2200-01-01 (UTC)")
    return value


Moment = Annotated[datetime, AfterValidator(check_moment)]
"""A date and time from a client, with or without a UTC offset, in the supported range."""
AwareMoment = Annotated[AwareDatetime, AfterValidator(check_moment)]
"""A date and time from a client with its UTC offset, in the supported range."""
