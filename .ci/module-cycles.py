#!/usr/bin/env python3
"""Fails when a module of a crate imports one that imports it back.

Usage: module-cycles.py SRC_DIR  (e.g. server/src)

Every .rs file is a module (`a/mod.rs` is `a`, `a/b.rs` is `a::b`). An edge A -> B is any path
`crate::…`, `super::…` or `self::…` in A (in `use` lines or in code) that resolves to module B
(the longest prefix that is a file). `mod x;` declarations and inline `#[cfg(test)] mod tests` are not edges. Reported: every
strongly connected component with more than one module, at file level and at top level
(`worker`, `session`, …).
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "server/src"
mods = {}
for dirpath, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".rs"):
            continue
        rel = os.path.relpath(os.path.join(dirpath, f), root)[:-3].split(os.sep)
        if rel[-1] == "mod":
            rel = rel[:-1]
        if rel in (["main"], ["lib"]):
            rel = []
        mods["::".join(rel)] = os.path.join(dirpath, f)


def resolve(parts):
    for n in range(len(parts), -1, -1):
        name = "::".join(parts[:n])
        if name in mods:
            return name
    return ""


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def expand_use(body):
    """Flattens `a::{b, c::{d, e}}` into paths."""
    out = []
    prefix_stack = [""]
    token = ""
    for ch in body + ",":
        if ch == "{":
            prefix_stack.append(prefix_stack[-1] + token.strip())
            token = ""
        elif ch in ",}":
            if token.strip():
                out.append(prefix_stack[-1] + token.strip())
            token = ""
            if ch == "}":
                prefix_stack.pop()
        else:
            token += ch
    return out


edges = {m: set() for m in mods}
for mod, path in mods.items():
    here = mod.split("::") if mod else []
    text = strip_comments(open(path, encoding="utf-8").read())
    # Inline unit-test modules (`#[cfg(test)] mod tests {`, last in a file) are not the module's
    # imports, and their `super::` means the file itself.
    text = re.split(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)[0]
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text, flags=re.S):
        paths += expand_use(re.sub(r"\s+", "", m.group(1)))
    paths += re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", text)
    for p in paths:
        parts = [x for x in p.split("::") if x and x != "*"]
        parts = [x.split(" as ")[0] for x in parts]
        if not parts:
            continue
        if parts[0] == "crate":
            target = parts[1:]
        elif parts[0] == "self":
            target = here + parts[1:]
        elif parts[0] == "super":
            base = here
            while parts and parts[0] == "super":
                base, parts = base[:-1], parts[1:]
            target = base + parts
        else:
            continue
        t = resolve(target)
        if t != mod and t != "":
            edges[mod].add(t)


def sccs(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


top = {}
for a, bs in edges.items():
    ta = a.split("::")[0]
    top.setdefault(ta, set())
    for b in bs:
        tb = b.split("::")[0]
        if tb != ta:
            top[ta].add(tb)
        top.setdefault(tb, set())

bad = False
for level, graph in (("file", edges), ("top-level", top)):
    for comp in sccs(graph):
        bad = True
        print(f"{level} import cycle: {' <-> '.join(sorted(c or 'main' for c in comp))}")
if "-v" in sys.argv:
    for a in sorted(top):
        print(f"{a or 'main'} -> {', '.join(sorted(top[a])) or '-'}")
if bad:
    sys.exit(1)
print(f"{root}: no import cycles among {len(mods)} modules ({len(top)} top-level)")
