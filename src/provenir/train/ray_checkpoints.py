"""Ray Train's view of a run's checkpoints: each ``checkpoint-N``, reported once it is complete.

Ray Train's experiment folder is the run's own ``checkpoints`` folder (see
:mod:`provenir.train.ray_train`), so the folder Trainer wrote is reported where it lies, without a
copy (``CheckpointUploadMode.NO_UPLOAD``); a resume reads the same folder whichever launcher ran.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR


class RayCheckpointReporter(TrainerCallback):
    """Reports every saved checkpoint to Ray Train (``ray.train.report``).

    Registered after :class:`~provenir.train.checkpoints.CheckpointMarkerCallback`, so the folder
    Ray records is already marked complete. Every rank reports (Ray Train waits for all of them
    at each report); rank 0 alone names the checkpoint, which every rank wrote into.
    """

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        import ray.train
        from ray.train import Checkpoint, CheckpointUploadMode

        name = f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        folder = Path(args.output_dir) / name
        checkpoint = Checkpoint.from_directory(str(folder)) if state.is_world_process_zero else None
        ray.train.report(
            {"step": state.global_step},
            checkpoint=checkpoint,
            checkpoint_dir_name=name,
            checkpoint_upload_mode=CheckpointUploadMode.NO_UPLOAD,
        )
