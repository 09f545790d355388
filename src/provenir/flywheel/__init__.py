"""Data flywheel: mine failures, generate variants, filter, augment."""
