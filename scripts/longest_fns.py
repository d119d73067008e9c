#!/usr/bin/env python3
"""The longest functions under a folder of Rust code (lines from `fn` to its closing brace), for
the code-size measurements in BENCHMARKS.md. Functions inside `#[cfg(test)]` modules are left out.

Usage: scripts/longest_fns.py [DIR] [N]"""
import re
import sys
from pathlib import Path

FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+\"C\"\s+)?fn\s+(\w+)")


def functions(path):
    lines = path.read_text().splitlines()
    test_from = next((i for i, l in enumerate(lines) if l.strip() == "#[cfg(test)]"), len(lines))
    i = 0
    while i < test_from:
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        depth, started, j = 0, False, i
        while j < len(lines):
            code = re.sub(r'"(\\.|[^"\\])*"', '""', lines[j].split("//")[0])
            code = re.sub(r"'(\\.|[^'\\])'", "''", code)
            for ch in code:
                if ch == "{":
                    depth += 1
                    started = True
                elif ch == "}":
                    depth -= 1
            if started and depth <= 0:
                break
            if not started and code.rstrip().endswith(";"):
                break
            j += 1
        yield j - i + 1, f"{path}:{i + 1}", m.group(7)
        i += 1  # nested functions are counted too


root = Path(sys.argv[1] if len(sys.argv) > 1 else "src")
n = int(sys.argv[2]) if len(sys.argv) > 2 else 5
found = sorted((f for p in root.rglob("*.rs") for f in functions(p)), reverse=True)
for length, where, name in found[:n]:
    print(f"{length:5} {name:32} {where}")
