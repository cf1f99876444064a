"""Configuration: units, typed model, loading and rendering."""
