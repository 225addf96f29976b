"""Alerts: what a rule raised, and its life from open through acknowledged to resolved."""
