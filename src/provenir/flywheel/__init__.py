"""Data flywheel: mine failures, generate variants, filter, augment.

::

    from provenir.flywheel import DataFlywheel, FlywheelConfig

    result = DataFlywheel(FlywheelConfig.from_yaml("examples/flywheel_offline.yaml")).run()

See :mod:`provenir.flywheel.flywheel` for the stages and the files they write.
"""

from provenir.flywheel.config import FlywheelConfig
from provenir.flywheel.flywheel import STAGES, DataFlywheel, FlywheelResult
from provenir.flywheel.generators import ModelParaphraser, RuleParaphraser, VariantGenerator
from provenir.flywheel.mining import Failure, mine_failures
from provenir.flywheel.quality import QualityFilter

__all__ = [
    "STAGES",
    "DataFlywheel",
    "Failure",
    "FlywheelConfig",
    "FlywheelResult",
    "ModelParaphraser",
    "QualityFilter",
    "RuleParaphraser",
    "VariantGenerator",
    "mine_failures",
]
