"""Telemetry: from a device's MQTT message to stored, queryable and live points."""
