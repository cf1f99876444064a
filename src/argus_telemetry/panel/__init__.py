"""The control panel: a local web UI fed by the stream."""
