"""Time-series port: the telemetry store interface (``base``) and its adapters (``embedded``, ``influx``).

Domain code imports from here or from ``base`` only; the wiring picks an adapter from settings.
"""

from factoryops.ports.timeseries.base import (
    ALL_FACTORIES,
    DEFAULT_RETENTION,
    Aggregate,
    AllFactories,
    FactoryScope,
    Point,
    QueryResult,
    Resolution,
    Retention,
    Sample,
    SeriesKey,
    TimeseriesError,
    TimeseriesRejected,
    TimeseriesStore,
    TimeseriesUnavailable,
)

__all__ = [
    "ALL_FACTORIES",
    "DEFAULT_RETENTION",
    "Aggregate",
    "AllFactories",
    "FactoryScope",
    "Point",
    "QueryResult",
    "Resolution",
    "Retention",
    "Sample",
    "SeriesKey",
    "TimeseriesError",
    "TimeseriesRejected",
    "TimeseriesStore",
    "TimeseriesUnavailable",
]
