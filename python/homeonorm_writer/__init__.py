"""homeonorm_writer: any PyTorch training loop writes a homeonorm run folder
(docs/run-folder.md), so that `homeonorm report`, `plot` and `compare` read its
results beside homeonorm's own.

    from homeonorm_writer import Run
    run = Run("outputs/mine", dataset="cifar10", method="batch-norm", seed=0)
    ...
    run.finish()

Depends on torch (and numpy through it) only.
"""
from .run import FORMAT_VERSION, PRESETS, RULE_SETTINGS, SETTINGS, Run, run_path  # noqa: F401
from .safetensors import load as load_safetensors, save as save_safetensors  # noqa: F401
