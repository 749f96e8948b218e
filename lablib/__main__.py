"""lablib's command line: `python -m lablib doctor | shell | student-edition | progress`."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lablib", description="container-networking lab hosts")
    commands = parser.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser("doctor", help="check this machine can run lab hosts, and say what to fix")
    doctor.add_argument("--quiet", action="store_true", help="print only problems")
    doctor.add_argument("--docker", action="store_true", help="also start Docker in a lab host (lab.docker())")
    commands.add_parser("shell", help="open bash in a fresh lab host (it is gone when you exit)")
    edition = commands.add_parser("student-edition", help="write the notebooks without solutions or outputs")
    edition.add_argument("source", nargs="?", default="labs", help="folder of notebooks (default: labs)")
    edition.add_argument("--out", default="student", help="folder to write them to (default: student)")
    edition.add_argument("--keep-existing", action="store_true",
                         help="leave notebooks already in --out alone (they may hold answers)")
    progress = commands.add_parser("progress", help="which exercises each learner passed, from their notebooks")
    progress.add_argument("paths", nargs="+", help="notebooks, progress files, or folders holding them")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        from .cli.doctor import run
        return run(quiet=args.quiet, docker=args.docker)
    if args.command == "shell":
        from .cli.shell import run
        return run()
    if args.command == "progress":
        from .course.progress import collect, fault_hunts
        table = collect(args.paths)
        print(table.to_string() if not table.empty else "no exercise results found there")
        hunts = fault_hunts(args.paths)
        if not hunts.empty:
            print("\nfault hunts (from progress files): the fault each learner got, hints used, solved")
            print(hunts.to_string(index=False))
        return 0
    if args.command == "student-edition":
        from pathlib import Path

        from .course.editions import write_student_editions
        written = write_student_editions(Path(args.source), Path(args.out), keep_existing=args.keep_existing)
        kept = len(list(Path(args.source).glob("*.ipynb"))) - len(written)
        print(f"wrote {len(written)} student notebooks to {args.out}/ (answer cells instead of solutions, "
              "outputs cleared)" + (f"; kept the {kept} already there (they may hold answers)" if kept else ""))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
