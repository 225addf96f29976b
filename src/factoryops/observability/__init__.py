"""Observability of the platform itself: process heartbeats, database-read metrics, the root's health page."""
