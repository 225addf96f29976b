"""Jobs: the durable queue that analytics, reports and notifications run on, and its workers."""
