"""Devices: the registry of a factory's machines and the properties their firmware reports."""
