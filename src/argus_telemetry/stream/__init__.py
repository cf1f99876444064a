"""The live stream (TelemetryPipe): protocol v1 over a Unix socket or a Windows named pipe."""
