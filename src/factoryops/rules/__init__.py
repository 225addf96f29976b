"""Rules: what to watch in the telemetry, compiled once, evaluated on every event."""
