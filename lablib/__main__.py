"""lablib's command line: `python -m lablib doctor | shell`."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lablib", description="container-networking lab hosts")
    commands = parser.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser("doctor", help="check this machine can run lab hosts, and say what to fix")
    doctor.add_argument("--quiet", action="store_true", help="print only problems")
    commands.add_parser("shell", help="open bash in a fresh lab host (it is gone when you exit)")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        from .doctor import run
        return run(quiet=args.quiet)
    if args.command == "shell":
        from .shell import run
        return run()
    return 2


if __name__ == "__main__":
    sys.exit(main())
