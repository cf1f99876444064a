"""Reading the host's raw counters."""
