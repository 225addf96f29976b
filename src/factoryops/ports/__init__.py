"""Ports: the interfaces to outside services, each with an embedded and a production adapter."""
