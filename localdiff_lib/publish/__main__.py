"""``python -m localdiff_lib.publish COMMAND``: the book's tooling from the command line (see the package docstring)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import BUDGETS
from . import chapters, lab_export, mathjax, numbers, status, student


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m localdiff_lib.publish", description=__doc__.split(":", 1)[1].strip())
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sync", help="rewrite each chapter's install cell and regenerate its paired .ipynb")
    s.add_argument("chapters", nargs="*", help="chapter .md files or names (default: every chapter)")
    s.add_argument("--outputs", action="store_true",
                   help="execute the chapters and store the outputs of their cells tagged nbval-check-output anew")
    sub.add_parser("mathjax", help="fetch MathJax 3 into _build/offline_static (needs npm)")
    a = sub.add_parser("assignments", help="regenerate the student notebooks of book/assignments/")
    a.add_argument("--check", action="store_true", help="only report stale student notebooks (exit 1 if any)")
    sub.add_parser("student-build", help="build _build/student/html, the book without solutions")
    sub.add_parser("status", help="print the chapter run times from the execution cache")
    nm = sub.add_parser("numbers", help="list the numbers typed in prose (neither glued nor explained constants)")
    nm.add_argument("pages", nargs="*", help="page .md files (default: every page of the book)")
    m = sub.add_parser("measure", help="execute every chapter and write the run times as JSON")
    m.add_argument("--out", type=Path, default=status.GPU_TIMES)
    m.add_argument("--budget", choices=BUDGETS)
    m.add_argument("--only", nargs="*")
    lab = sub.add_parser("lab", help="precompute the transition lab's states (PNG tiles + manifest.json)")
    lab.add_argument("out", help="output folder (replaced)")
    lab.add_argument("--images", type=int, default=4, help="held-out digits (default 4)")
    lab.add_argument("--force", action="store_true", help="recompute even if an export with the same fingerprint exists")
    args = p.parse_args(argv)
    root = chapters.ROOT
    if args.cmd == "sync":
        for path in chapters.sync(only=args.chapters or None, outputs=args.outputs):
            print("updated", path.relative_to(root))
    elif args.cmd == "mathjax":
        print("MathJax at", mathjax.fetch_mathjax().relative_to(root))
    elif args.cmd == "assignments":
        stale = student.generate_assignments(check=args.check)
        for path in stale:
            print(("stale: " if args.check else "wrote ") + str(path.relative_to(root)))
        return 1 if (args.check and stale) else 0
    elif args.cmd == "student-build":
        print("student edition at", student.student_build().relative_to(root))
    elif args.cmd == "status":
        print(status.status_table(status.chapter_run_times(), status.gpu_run_times(), status.t4_estimates()))
    elif args.cmd == "numbers":
        typed = [t for md in (map(Path, args.pages) if args.pages else numbers.pages()) for t in numbers.typed_numbers(md)]
        print("\n".join(map(str, typed)) or "no typed numbers")
        return 1 if typed else 0
    elif args.cmd == "measure":
        status.measure(args.out, args.budget, only=args.only)
    elif args.cmd == "lab":
        lab_export.export(args.out, n_images=args.images, reuse=not args.force, verbose=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
