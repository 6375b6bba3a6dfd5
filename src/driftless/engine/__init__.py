"""The engine: the task loop, evaluation plan, checkpoints and resume, seeding."""

from driftless.engine.runner import Engine, MethodOutcome, RunOutcome, run

__all__ = ["Engine", "MethodOutcome", "RunOutcome", "run"]
