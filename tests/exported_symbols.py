#!/usr/bin/env python3
"""libbcae.so exports exactly the functions include/bcae.h declares.

Usage: exported_symbols.py NM LIBBCAE_SO BCAE_H

Parses the header on its own (not the version script CMake generates from
it, so a mistake there is caught here): every top-level function
declaration, which must also carry BCAE_API. Then `nm -D --defined-only` on
the shared library. Fails on a symbol exported but not declared (an
internal function leaking into the ABI), on a function declared but not
exported (a user's link error), and on a declaration without BCAE_API.
"""
import re
import subprocess
import sys


def header_functions(text):
    """Names of the functions declared at file scope, and those lacking BCAE_API."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    # The extern "C" wrapper, then the other preprocessor lines with their
    # continuations.
    text = re.sub(r"#ifdef __cplusplus\n.*?#endif", " ", text, flags=re.S)
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
    names, unmarked = [], []
    depth, stmt = 0, []
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif depth == 0 and ch == ";":
            s = " ".join("".join(stmt).split())
            stmt = []
            # Struct and enum bodies were skipped; a typedef (of a function
            # pointer too) declares no function.
            if s.startswith("typedef"):
                continue
            m = re.match(r"[^(]*?\b([A-Za-z_]\w*)\s*\(", s)
            if not m:
                continue
            names.append(m.group(1))
            if not s.startswith("BCAE_API "):
                unmarked.append(m.group(1))
        elif depth == 0:
            stmt.append(ch)
    return names, unmarked


def exported(nm, lib):
    out = subprocess.run([nm, "-D", "--defined-only", lib], check=True, capture_output=True,
                         text=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            syms[parts[2].split("@")[0]] = parts[1]
    return syms


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    nm, lib, header = sys.argv[1:]
    with open(header) as f:
        declared, unmarked = header_functions(f.read())
    syms = exported(nm, lib)
    failures = 0
    if len(declared) < 10:
        print(f"FAILED: only {len(declared)} functions parsed from {header}")
        failures += 1
    for name in unmarked:
        print(f"FAILED: {name} is declared in bcae.h without BCAE_API")
        failures += 1
    for name in sorted(set(syms) - set(declared)):
        print(f"FAILED: {lib} exports {name} ({syms[name]}), which bcae.h does not declare")
        failures += 1
    for name in sorted(set(declared) - set(syms)):
        print(f"FAILED: bcae.h declares {name}, which {lib} does not export")
        failures += 1
    for name in sorted(set(declared) & set(syms)):
        if syms[name] not in ("T", "W", "i"):
            print(f"FAILED: {name} is exported as '{syms[name]}', not as a function")
            failures += 1
    print(f"exported_symbols: {len(syms)} exported, {len(declared)} declared in bcae.h; "
          f"{failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
