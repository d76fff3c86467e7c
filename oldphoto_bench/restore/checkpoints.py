"""Which checkpoints the restore pipeline needs, where they come from by default, and the error that names
the missing ones with the command that trains each."""

from __future__ import annotations

from pathlib import Path

from ..pretrained import PRETRAINED_DIR, RETRAIN_COMMAND, is_shipped, missing_shipped_message

# The one place that says where checkpoints come from by default: the runs folder shipped inside the package
# (oldphoto_bench/pretrained/tiny; `oldphoto-bench ship --list` says what it holds).
DEFAULT_CHECKPOINTS = PRETRAINED_DIR
STAGE_DESCRIPTIONS = {
    "vae-a": "VAE_A (old photos)",
    "vae-b": "VAE_B (clean photos)",
    "mapping": "the latent mapping A -> B",
    "scratch": "the scratch detector",
    "torn": "the torn-piece detector",
    "face": "the face enhancer",
}


def default_checkpoints() -> Path:
    """Where :class:`~.restorer.Restorer`, ``oldphoto-bench restore``, ``bench`` and ``demo`` look for checkpoints by
    default: the shipped folder :data:`oldphoto_bench.pretrained.PRETRAINED_DIR`."""
    return Path(DEFAULT_CHECKPOINTS)


def required_stages(with_scratch: bool) -> tuple[str, ...]:
    return ("vae-a", "vae-b", "mapping") + (("scratch",) if with_scratch else ())


class MissingCheckpointsError(FileNotFoundError):
    """Checkpoints the pipeline needs are missing; ``missing`` lists ``(stage, path, train command)``."""

    def __init__(self, runs: Path, missing: list[tuple[str, Path, str]]):
        self.runs, self.missing = runs, missing
        if is_shipped(runs):  # one command recreates every shipped file
            super().__init__(missing_shipped_message([p for _, p, _ in missing], runs))
            return
        lines = [f"missing checkpoint(s) in {runs}:"]
        lines += [
            f"  {path} ({STAGE_DESCRIPTIONS.get(stage, stage)}): train it with `{cmd}`"
            for stage, path, cmd in missing
        ]
        lines.append("  (or point --checkpoints at a folder that holds them)")
        super().__init__("\n".join(lines))


def check_checkpoints(runs: str | Path, with_scratch: bool) -> None:
    """Raise :class:`MissingCheckpointsError` naming every missing checkpoint and the command training it."""
    from ..train.artifacts import checkpoint_path, train_command

    runs = Path(runs)
    shipped = is_shipped(runs)
    missing = [
        (s, checkpoint_path(runs, s), RETRAIN_COMMAND if shipped else train_command(runs, s))
        for s in required_stages(with_scratch)
        if not checkpoint_path(runs, s).is_file()
    ]
    if missing:
        raise MissingCheckpointsError(runs, missing)
