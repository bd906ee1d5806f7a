"""Mobile-Former (Chen et al., CVPR 2022), exact to the authors' checkpoints, ready to lower."""
from .checkpoint import CheckpointError, load_checkpoint
from .config import VARIANTS, BlockRow, VariantConfig
from .model import MobileFormer
from .registry import UnknownModelError, create_model, get_config, list_models

__all__ = [
    "VARIANTS",
    "BlockRow",
    "CheckpointError",
    "MobileFormer",
    "UnknownModelError",
    "VariantConfig",
    "create_model",
    "get_config",
    "list_models",
    "load_checkpoint",
]
