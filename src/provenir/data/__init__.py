"""Data: loading, validation, scanning hooks and prompt templates."""
