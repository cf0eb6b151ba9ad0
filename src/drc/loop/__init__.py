"""The one training loop (`trainer.Trainer`), its settings (`optim.OptimConfig`) and its checkpoints
(`checkpoint.CheckpointManager`).

Shared by every stage (`drc.train`) and by the evaluation probes (`drc.eval.probes`), so neither
the probes nor anything else that trains a small model depends on the training stages.
"""
