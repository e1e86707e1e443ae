"""python -m bench [--quick] [--write] [--output PATH] [NAME ...]"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

from . import BENCHMARKS
from .common import Section

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "RESULTS.md"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"only these: {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, a few seconds each (a smoke run; does not write RESULTS.md unless --write)")
    parser.add_argument("--write", action="store_true",
                        help="write the report even in --quick mode or for a subset of the benchmarks")
    parser.add_argument("--no-write", action="store_true", help="do not write the report")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"the report (default {DEFAULT_OUTPUT})")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)} — choose from {', '.join(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)
    mode = "quick" if args.quick else "full"
    print(f"bench: {mode} run of {', '.join(names)}", flush=True)

    sections: list[Section] = []
    failed = []
    started = time.perf_counter()
    for name in names:
        began = time.perf_counter()
        try:
            section = importlib.import_module(BENCHMARKS[name]).run(quick=args.quick)
        except Exception:
            failed.append(name)
            print(f"bench {name}: ERROR after {time.perf_counter() - began:.1f} s", flush=True)
            traceback.print_exc()
            continue
        section.seconds = time.perf_counter() - began
        sections.append(section)
        if section.skipped:
            print(f"bench {name}: skipped — {section.skipped}", flush=True)
        else:
            missed = f"; missed: {', '.join(f.name for f in section.missed)}" if section.missed else ""
            print(f"bench {name}: {section.headline} ({section.seconds:.1f} s){missed}", flush=True)
    total = time.perf_counter() - started
    print(f"bench: {len(sections)} benchmarks in {total:.1f} s" + (f", failed: {', '.join(failed)}" if failed else ""),
          flush=True)

    # the report is the whole, full run: a quick run or a subset writes one only when asked
    if (args.write or (not args.quick and not args.names)) and not args.no_write and sections:
        from .report import write

        write(args.output, sections, quick=args.quick, seconds=total)
        print(f"bench: wrote {args.output}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
