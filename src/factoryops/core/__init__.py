"""Core: settings, database, tenant scope, security and errors. Imports no domain."""
