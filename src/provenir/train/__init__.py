"""Training: backends, the run driver, reproduction, callbacks."""
