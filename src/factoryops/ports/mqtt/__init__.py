"""MQTT port: the embedded broker of `factoryops up`, and the client the telemetry service uses."""
