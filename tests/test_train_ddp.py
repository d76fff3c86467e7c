"""Multi-process training on CPU: 2 processes, gloo backend, DistributedDataParallel."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with gloo is not available")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, runs: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    from oldphoto_bench.train import Trainer, resolve_config
    from oldphoto_bench.train.ddp import init_distributed, shutdown_distributed

    info, device = init_distributed("cpu")
    cfg = resolve_config("smoke", "mapping", ["schedule.steps=3"])
    trainer = Trainer("mapping", cfg, runs, data="embedded", device=device, dist=info, progress=False,
                      tensorboard=False)
    history = trainer.run()
    params = {f"{name}.{k}": v.detach().clone() for name, m in trainer.stage.models.items()
              for k, v in m.state_dict().items()}
    trainer.close()
    shutdown_distributed()
    torch.save({"params": params, "history": history}, Path(runs) / f"rank{rank}.pt")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_two_process_gloo_training_keeps_ranks_in_step(tmp_path):
    """mapping (partial nonlocal block, discriminator) in 2 processes: one checkpoint, equal parameters."""
    from oldphoto_bench.cli import main

    runs = tmp_path / "runs"
    for stage in ("vae-a", "vae-b"):  # the frozen VAEs the mapping needs, trained in one process
        assert main(["train", stage, "--config", "smoke", "--out", str(runs), "--set", "schedule.steps=1",
                     "--no-progress"]) == 0
    mp.spawn(_worker, args=(2, _free_port(), str(runs)), nprocs=2, join=True)
    r0, r1 = (torch.load(runs / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert r0["params"].keys() == r1["params"].keys()
    for k in r0["params"]:
        assert torch.equal(r0["params"][k], r1["params"][k]), k
    # the ranks saw different photos: their local losses differ
    assert r0["history"][0]["latent_l1"] != r1["history"][0]["latent_l1"]
    ckpt = torch.load(runs / "mapping" / "last.pt", weights_only=True)
    assert ckpt["step"] == 3 and ckpt["config"]["run"]["world_size"] == 2
    for k, v in ckpt["models"]["mapping"].items():
        assert torch.equal(v, r0["params"][f"mapping.{k}"])
    rows = _rows(runs / "mapping" / "log.csv")
    assert [r["step"] for r in rows] == ["1", "2", "3"]  # written once, by rank 0
    # logged losses are the mean over ranks
    mean = (r0["history"][0]["latent_l1"] + r1["history"][0]["latent_l1"]) / 2
    assert float(rows[0]["latent_l1"]) == pytest.approx(mean, rel=1e-6)
    assert not list(runs.rglob("*.tmp"))


def test_torchrun_cli_two_processes(tmp_path):
    """``torchrun --standalone --nproc_per_node 2 -m oldphoto_bench.cli train vae-b ...`` (torchrun is
    ``python -m torch.distributed.run``)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "oldphoto_bench.cli", "train", "vae-b",
           "--config", "smoke", "--out", str(tmp_path), "--set", "schedule.steps=2", "--no-progress"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stderr.count("checkpoint") == 1  # only rank 0 reports (and writes)
    ckpt = torch.load(tmp_path / "vae-b" / "last.pt", weights_only=True)
    assert ckpt["config"]["run"]["world_size"] == 2 and ckpt["step"] == 2
    assert [r["step"] for r in _rows(tmp_path / "vae-b" / "log.csv")] == ["1", "2"]
