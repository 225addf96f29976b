"""Analytics (issue 5): datasets exported from telemetry, models run on them as jobs, versioned results."""
