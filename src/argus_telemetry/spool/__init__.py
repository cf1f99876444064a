"""The durable local spool: every snapshot is stored here before anything else."""
