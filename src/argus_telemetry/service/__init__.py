"""The OS service installer (systemd, Windows SCM)."""
