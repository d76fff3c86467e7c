"""``oldphoto-bench weights``: list the pretrained weights the metrics need, and fetch them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = """List or fetch the pretrained weights the metrics need (LPIPS: AlexNet + linear layers; FID/KID: the FID
Inception-v3). Nothing is downloaded except by `fetch`.

  oldphoto-bench weights [NAME...] [--dir DIR] [--json]     where each file is looked for, its checksum, present or not
  oldphoto-bench weights fetch [NAME...] [--dir DIR]         download, verify SHA-256, then move into place

Files are looked for in --dir, then $OLDPHOTO_WEIGHTS, then the torch hub cache (torch.hub.get_dir()/checkpoints,
honouring $TORCH_HOME), then entry-specific folders (the lpips package). `fetch` writes to --dir, else
$OLDPHOTO_WEIGHTS, else the torch hub cache; a download whose SHA-256 does not match leaves nothing behind.
Run `fetch` on a machine with internet and copy the folder over when the target machine has none."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="list or fetch the pretrained weights of the metrics",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", nargs="?", default="list", metavar="list|fetch",
                   help="list (default) or fetch; any other word is taken as the first NAME to list")
    p.add_argument("names", nargs="*", metavar="NAME", help="catalogue entries (default: all)")
    p.add_argument("--dir", type=Path, default=None,
                   help="weights folder: looked in first; where fetch writes (default: $OLDPHOTO_WEIGHTS or the "
                        "torch hub cache)")
    p.add_argument("--json", action="store_true", help="list: print JSON instead of a table")
    p.add_argument("--no-verify", action="store_true", help="list: do not hash files (faster)")
    p.add_argument("--force", action="store_true", help="fetch: download even when a verified file is present")
    p.add_argument("--timeout", type=float, default=60.0, help="fetch: network timeout in seconds (default: 60)")
    p.set_defaults(run=run)


def _names(args: argparse.Namespace, catalogue) -> list[str]:
    from ..metrics.weights import get_entry

    names = args.names or list(catalogue)
    for n in names:
        get_entry(n, catalogue)  # unknown names fail with the valid list
    return names


def run(args: argparse.Namespace) -> int:
    from ..metrics import weights as w

    catalogue = w.CATALOGUE
    if args.action not in ("list", "fetch"):  # `oldphoto-bench weights alexnet` lists that entry
        args.names, args.action = [args.action, *args.names], "list"
    names = _names(args, catalogue)
    if args.action == "fetch":
        return _fetch(args, names, catalogue)
    rows = [w.status(n, args.dir, verify=not args.no_verify, catalogue=catalogue) for n in names]
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
        return 0
    for r in rows:
        e = r.entry
        check = f"sha256 {e.sha256}" if e.sha256 else f"sha256 prefix {e.sha256_prefix} (from the file name)"
        state = {"present": "present" + ("" if args.no_verify else ", verified"),
                 "corrupt": f"CORRUPT (sha256 {r.digest[:16] if r.digest else '?'}...)",
                 "missing": "MISSING"}[r.state]
        print(f"{e.key}: {state}")
        print(f"  {e.description}; used by {', '.join(e.used_by)}")
        print(f"  file   {' or '.join(e.filenames)}" + (f" ({e.size:,} bytes)" if e.size else ""))
        print(f"  check  {check}")
        print(f"  url    {e.url}")
        if r.path is not None:
            print(f"  found  {r.path}")
        print("  looked in " + ", ".join(str(p.parent) for p in r.looked_in[:: len(e.filenames)]))
    missing = [r.entry.key for r in rows if r.state != "present"]
    if missing:
        print(f"\nto fetch: oldphoto-bench weights fetch {' '.join(missing)}"
              + (f" --dir {args.dir}" if args.dir else ""), file=sys.stderr)
    return 0


def _fetch(args: argparse.Namespace, names: list[str], catalogue) -> int:
    from ..metrics import weights as w

    dest = args.dir if args.dir is not None else w.default_dir()
    failed = 0
    for n in names:
        print(f"{n}: fetching {catalogue[n].url} -> {dest}", file=sys.stderr)
        try:
            path = w.fetch(n, dest, force=args.force, timeout=args.timeout, catalogue=catalogue)
        except w.WeightsError as e:
            failed += 1
            print(f"{n}: FAILED: {e}", file=sys.stderr)
            continue
        print(f"{n}: ok {path}")
    return 1 if failed else 0
