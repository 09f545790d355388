"""Core: config, manifest, hashing, abstractions and errors. Imports nothing heavy."""
