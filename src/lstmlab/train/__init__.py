"""Training: config dataclass, model wrapper, loop with checkpoints and exact resume."""
from .config import TEST_STREAM, TRAIN_STREAM, TrainConfig, test_rng, train_rng
from .loop import CHECKPOINT, WEIGHTS, TrainingDiverged, evaluate, load_run, train
from .model import SeqModel
from .progress import Progress, show_progress

__all__ = ["TrainConfig", "SeqModel", "train", "evaluate", "load_run", "TrainingDiverged",
           "Progress", "show_progress", "train_rng", "test_rng", "TRAIN_STREAM", "TEST_STREAM",
           "CHECKPOINT", "WEIGHTS"]
