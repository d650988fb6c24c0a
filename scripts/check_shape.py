#!/usr/bin/env python3
"""Checks the shape of the library and the CLI: no file over 700 lines,
no function over 60 lines, none over five parameters, no
`too_many_arguments` allowance. Tests are left out of the function limits:
a test's body is what it asserts.

The limits are the ones docs/development.md states. The parser is a
brace counter over Rust source with strings, chars and comments blanked,
which is enough for code `cargo fmt` has formatted.

    python3 scripts/check_shape.py            # exit 1 and a list when a limit is passed
    python3 scripts/check_shape.py --report   # the longest functions, whatever the limits
"""

import pathlib
import re
import sys

ROOTS = ["shared/src", "cli/src"]
MAX_FILE_LINES = 700
MAX_FN_LINES = 60
MAX_PARAMS = 5

FN = re.compile(r"^\s*(?:pub(?:\([a-z:_ ]+\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")


def blank(text):
    """The source with string and char literals and comments replaced by spaces,
    newlines kept, so line numbers and braces stay where they are."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = '"' + hashes
            j = text.find(end, i + len(hashes) + 2)
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            m = re.match(r"'(\\.|\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|[^\\'])'", text[i:])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def params(signature):
    """The number of parameters in `fn name<…>(…)`, `self` not counted."""
    start = signature.find("(")
    depth, args, current = 0, [], ""
    for c in signature[start + 1 :]:
        if c in "(<[{":
            depth += 1
        elif c in ")>]}":
            if depth == 0 and c == ")":
                break
            depth -= 1
        if c == "," and depth == 0:
            args.append(current)
            current = ""
        else:
            current += c
    args.append(current)
    args = [a.strip() for a in args if a.strip()]
    return len([a for a in args if not re.match(r"^(&\s*('\w+\s+)?)?(mut\s+)?self\b", a)])


def is_test(lines, number):
    """Whether the attributes above line `number` make it a test (whose body the limits leave alone)."""
    k = number - 1
    while k >= 0 and lines[k].strip().startswith("#["):
        if re.match(r"\s*#\[(tokio::)?test\b", lines[k]):
            return True
        k -= 1
    return False


def functions(path):
    """(name, first line, line count, parameter count) of each function with a body."""
    lines = blank(path.read_text()).split("\n")
    found = []
    for number, line in enumerate(lines):
        match = FN.match(line)
        if not match or is_test(lines, number):
            continue
        signature, depth, body_start = "", 0, None
        for k in range(number, len(lines)):
            for c in lines[k]:
                if body_start is None:
                    signature += c
                    if c == ";" and depth == 0:
                        break
                    if c == "{" and depth == 0 and ")" in signature:
                        body_start, depth = k, 1
                        continue
                    if c in "(<[":
                        depth += 1
                    elif c in ")>]" and not signature.endswith("->"):
                        depth -= 1
                else:
                    depth += {"{": 1, "}": -1}.get(c, 0)
                    if depth == 0:
                        found.append((match.group(1), number + 1, k - number + 1, params(signature)))
                        break
            else:
                continue
            break
    return found


def main():
    problems, everything = [], []
    for root in ROOTS:
        for path in sorted(pathlib.Path(root).rglob("*.rs")):
            text = path.read_text()
            count = text.count("\n")
            if count > MAX_FILE_LINES:
                problems.append(f"{path}: {count} lines (at most {MAX_FILE_LINES})")
            if "too_many_arguments" in text:
                problems.append(f"{path}: allows clippy::too_many_arguments")
            for name, line, length, arity in functions(path):
                everything.append((length, arity, f"{path}:{line} {name}"))
                if length > MAX_FN_LINES:
                    problems.append(f"{path}:{line}: fn {name} is {length} lines (at most {MAX_FN_LINES})")
                if arity > MAX_PARAMS:
                    problems.append(f"{path}:{line}: fn {name} takes {arity} parameters (at most {MAX_PARAMS})")
    if "--report" in sys.argv:
        lengths = sorted(l for l, _, _ in everything)
        print(f"{len(everything)} functions, median {lengths[len(lengths) // 2]} lines")
        for length, arity, where in sorted(everything, reverse=True)[:25]:
            print(f"{length:4} lines {arity} params  {where}")
    for problem in problems:
        print(problem)
    return 1 if problems and "--report" not in sys.argv else 0


if __name__ == "__main__":
    sys.exit(main())
