"""Contract suites of the ports: one suite per port, run against every adapter of that port."""
