"""RLAIF: generate, judge, build preference pairs, DPO, evaluate, gate, iterate.

::

    from provenir.rlaif import RLAIFConfig, RLAIFPipeline

    result = RLAIFPipeline(RLAIFConfig.from_yaml("examples/rlaif_offline.yaml")).run()
    print(result.best_run_id, result.stopped_because)
"""

from provenir.rlaif.config import RLAIFConfig
from provenir.rlaif.pipeline import IterationSummary, RLAIFPipeline, RLAIFResult

__all__ = ["IterationSummary", "RLAIFConfig", "RLAIFPipeline", "RLAIFResult"]
