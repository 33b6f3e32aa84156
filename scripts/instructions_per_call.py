#!/usr/bin/env python3
"""Instructions per call of a function, counted by callgrind: a figure that does not depend on how
busy the machine is.

  scripts/instructions_per_call.py BENCH_BINARY BENCHMARK_FILTER FUNCTION_SUBSTRING

Runs the Google Benchmark binary under `valgrind --tool=callgrind` with the given filter, then sums,
over every call site of a function whose name contains FUNCTION_SUBSTRING, the calls and the
inclusive instruction counts, and prints instructions per call.
"""
import re
import subprocess
import sys
import tempfile


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    binary, bench_filter, function = sys.argv[1:]
    with tempfile.NamedTemporaryFile(suffix=".callgrind") as out:
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}", binary,
                        f"--benchmark_filter={bench_filter}", "--benchmark_min_time=0.05"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lines = open(out.name).read().split("\n")
    names, callee, calls, instructions = {}, "", 0, 0
    for i, line in enumerate(lines):
        m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line)
        if m:
            kind, ident, name = m.groups()
            if name:
                names[ident] = name
            if kind == "cfn":
                callee = names.get(ident, ident)
            continue
        m = re.match(r"calls=(\d+)", line)
        if m and function in callee:
            calls += int(m.group(1))
            instructions += int(lines[i + 1].split()[-1])
    if calls == 0:
        sys.exit(f"no calls to a function matching {function!r}")
    print(f"{function}: {calls} calls, {instructions / calls:.1f} instructions per call")


if __name__ == "__main__":
    main()
