"""Evaluation: metrics with confidence intervals, regression gate, RAG metrics, judges."""
