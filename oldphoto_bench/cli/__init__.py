"""The ``oldphoto-bench`` command. Each subcommand lives in its own module with ``add_parser`` and ``run``.

Exit codes: 0 success, 1 some inputs failed (the others were processed), 2 usage error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__

# name -> module path; imported lazily so `oldphoto-bench --help` stays fast and nothing heavy loads early.
SUBCOMMANDS: dict[str, str] = {
    "degrade": "oldphoto_bench.cli.degrade",
    "demo": "oldphoto_bench.cli.demo",
    "faces": "oldphoto_bench.cli.faces",
    "train": "oldphoto_bench.cli.train",
    "latent-gap": "oldphoto_bench.cli.latent_gap",
    "restore": "oldphoto_bench.cli.restore",
    "weights": "oldphoto_bench.cli.weights",
    "bench": "oldphoto_bench.cli.bench",
    "ship": "oldphoto_bench.cli.ship",
}


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="oldphoto-bench",
        description=(
            "Old photo restoration via deep latent space translation (Wan et al., CVPR 2020): "
            "synthesize old-photo degradations, train the triplet-domain VAEs and the latent mapping, "
            "restore photos and benchmark methods. Run `oldphoto-bench COMMAND --help` for details."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="print debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        _check_common(args)
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (KeyError, ValueError, FileNotFoundError) as e:  # configuration/usage problems: one clear line
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"oldphoto-bench {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except OSError as e:  # the file system refused something the run needed (full disk, permissions, ...)
        where = f"{e.filename}: " if e.filename else ""
        print(f"oldphoto-bench {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1


def _check_common(args: argparse.Namespace) -> None:
    """Before any work: the output folder can hold the results, and the device exists."""
    from .checks import check_device, check_out_dir

    if getattr(args, "out", None) is not None and not getattr(args, "list", False):
        check_out_dir(args.out, "--out")
    if getattr(args, "device", None) is not None:
        check_device(args.device, "--device")


if __name__ == "__main__":
    sys.exit(main())
