"""Readers that turn a run's artifacts into pictures and tables: HTML report, lineage, comparison.

Like :mod:`provenir.cli` and :mod:`provenir.api`, nothing here trains or changes a run; it reads
manifests, ``train_log.jsonl`` and ``eval.json``. matplotlib is imported only while a report is
drawn, so ``import provenir.reporting`` stays light.
"""
