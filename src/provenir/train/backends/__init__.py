"""Training backends (registered in the plugin registry under their names)."""
