"""Entry points: the CLI, the API process, the telemetry service and the worker."""
