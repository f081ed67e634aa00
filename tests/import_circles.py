#!/usr/bin/env python3
"""Import circles between the modules of each Rust crate of the project (engine/src, src).

A module is a file (nested modules too: src/workers/inference.rs is workers::inference). A
reference `crate::a::b::Item` is an import of the longest module path it names; `super::x` of
the parent module. A circle (a imports b, b imports a, or longer) means none of its files can be
read, tested or changed alone: shared pieces belong in a leaf both import. Unit tests
(`#[cfg(test)]` onwards) and comments do not count. Exit 1 and name the ties when a circle exists.

Usage: tests/import_circles.py [SRC_DIR ...]   (default: engine/src src)
"""

import re
import sys
from collections import defaultdict
from pathlib import Path


def modules(src: Path) -> dict[str, Path]:
    """module path ("workers::inference") -> file, for every module file of one crate."""
    found = {}
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[0] == "bin" or parts in (["lib"], ["main"]):
            continue  # binaries and the crate root import everything; they are not modules
        if parts[-1] == "mod":
            parts = parts[:-1]
        found["::".join(parts)] = path
    return found


def imports(src: Path) -> dict[str, dict[str, set[str]]]:
    mods = modules(src)
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for name, path in mods.items():
        text = path.read_text(encoding="utf-8").split("#[cfg(test)]")[0]
        text = re.sub(r"//[^\n]*", "", text)
        refs = [m.split("::") for m in re.findall(r"\bcrate::((?:\w+::)*\w+)\b(?!::)", text)]
        for group_path, names in re.findall(r"\bcrate::((?:\w+::)*)\{([^}]*)\}", text):
            for item in names.split(","):
                refs.append(group_path.split("::")[:-1] + [item.strip().split(" ")[0]])
        parent = name.rsplit("::", 1)[0] if "::" in name else None
        for item in re.findall(r"\bsuper::(\w+)", text):
            if parent:
                refs.append(parent.split("::") + [item])
        for ref in refs:
            for cut in range(len(ref), 0, -1):
                target = "::".join(ref[:cut])
                if target in mods:
                    if target != name:
                        graph[name][target].add(ref[cut] if cut < len(ref) else "*")
                    break
    return graph


def circles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def main(dirs: list[str]) -> int:
    found = False
    for src in dirs:
        graph = imports(Path(src))
        edges = sum(len(targets) for targets in graph.values())
        components = circles(graph)
        if not components:
            print(f"{src}: {len(modules(Path(src)))} modules, {edges} imports between them, no circle")
        for component in components:
            found = True
            print(f"circle in {src}: {' <-> '.join(component)}")
            for a in component:
                for b in component:
                    if b in graph.get(a, {}):
                        print(f"  {a} uses {b}::{{{', '.join(sorted(graph[a][b]))}}}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["engine/src", "src"]))
