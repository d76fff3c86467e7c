"""How fast ``oldphoto-bench --help`` and every subcommand's ``--help`` answer, and how much memory they take.

    python benchmarks/cli_help.py [--repeats 5] [--json PATH]

Each command runs in a new process (``python -m oldphoto_bench.cli [COMMAND] --help``); the figures are the
median wall time over ``--repeats`` runs and the peak resident memory of the process. Measured side by side
for scale: an empty interpreter (``python -c pass``) and ``python -c "import torch"``, what every ``--help``
paid before the parsers stopped importing torch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def measure(argv: list[str], repeats: int) -> dict[str, float]:
    """Median wall seconds and the largest peak RSS (MiB) of ``argv`` run ``repeats`` times."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    times, rss = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - t0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode()
        proc.stderr.close()
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited with {proc.returncode}: {err}")
        rss.append(usage.ru_maxrss / 1024)  # KiB on Linux
    return {"seconds": statistics.median(times), "max_seconds": max(times), "peak_mib": max(rss)}


def main(argv: list[str] | None = None) -> int:
    from oldphoto_bench.cli import SUBCOMMANDS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="runs per command (default: 5)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)

    py = [sys.executable]
    cases = {"python -c pass": [*py, "-c", "pass"], "python -c 'import torch'": [*py, "-c", "import torch"]}
    for name in [None, *SUBCOMMANDS]:
        label = f"oldphoto-bench {name + ' ' if name else ''}--help"
        cases[label] = [*py, "-m", "oldphoto_bench.cli", *([name] if name else []), "--help"]
    rows = {}
    print(f"{'command':<36} {'median s':>9} {'max s':>7} {'peak MiB':>9}")
    for label, cmd in cases.items():
        rows[label] = measure(cmd, args.repeats)
        r = rows[label]
        print(f"{label:<36} {r['seconds']:>9.3f} {r['max_seconds']:>7.3f} {r['peak_mib']:>9.1f}")
    machine = {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "python": platform.python_version(),
               "platform": platform.platform()}
    print(f"{machine['cpus']} CPUs, load average {', '.join(f'{x:.2f}' for x in machine['load_average'])}, "
          f"Python {machine['python']}")
    if args.json is not None:
        args.json.write_text(json.dumps({"repeats": args.repeats, "machine": machine, "commands": rows},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
