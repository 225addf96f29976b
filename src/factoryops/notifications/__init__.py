"""Notifications: alert emails and WhatsApp messages, delivered asynchronously from an outbox."""
