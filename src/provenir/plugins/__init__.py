"""Plugin registry: backends, metrics, judges and reward functions by name."""
