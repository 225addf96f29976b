"""Tenancy: factories, their users and roles, sign-in and the audit log."""
