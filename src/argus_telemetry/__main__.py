"""`python -m argus_telemetry` runs the command line."""

from __future__ import annotations

import sys

from argus_telemetry.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
