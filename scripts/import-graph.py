#!/usr/bin/env python3
"""Lists the import circles between a crate's source files.

Each file under src/ is a node; an edge a -> b means file a names a path in
module b (`crate::x::y`, `super::y`, or `self::y` in a directory module).
Prints every strongly connected component with more than one file: each is a
circle a reader climbs around. Usage: scripts/import-graph.py [--check] CRATE...
(a crate's directory, holding src/); with --check it exits 1 when any crate has
a circle (scripts/test.sh runs it so).
"""
import os
import re
import sys

PATH_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_BLOCK_RE = re.compile(r"\buse\s+(crate|super|self)::\{([^;]*)\};", re.S)


def module_of(rel):
    """src-relative file path -> module path tuple."""
    parts = rel[:-3].split("/")
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments_and_tests(text):
    text = re.sub(r"//[^\n]*", "", text)
    # Drop #[cfg(test)] mod tests { ... } blocks (to the end of the file, where they live).
    index = text.find("#[cfg(test)]")
    if index >= 0:
        text = text[:index]
    return text


def resolve(modules, base, names):
    """Longest known module prefix of base + names."""
    path = list(base) + names
    while path:
        if tuple(path) in modules:
            return tuple(path)
        path.pop()
    return None


def edges_of(src_root):
    files = {}
    for directory, _, names in os.walk(src_root):
        for name in names:
            if name.endswith(".rs"):
                full = os.path.join(directory, name)
                files[module_of(os.path.relpath(full, src_root))] = full
    graph = {module: set() for module in files}
    for module, full in files.items():
        with open(full, encoding="utf-8") as handle:
            text = strip_comments_and_tests(handle.read())
        references = []
        for kind, block in USE_BLOCK_RE.findall(text):
            for item in block.split(","):
                item = item.strip().split(" as ")[0]
                names = [n for n in re.split(r"::|\{|\}", item) if n.strip()]
                if names:
                    references.append((kind, [n.strip() for n in names]))
        for kind, rest in PATH_RE.findall(text):
            references.append((kind, [n for n in rest.split("::") if n]))
        aliases = {}
        for kind, names in references:
            if kind == "crate":
                base = ()
            elif kind == "super":
                base = module[:-1]
            else:
                base = module
            while names and names[0] == "super":
                base = base[:-1]
                names = names[1:]
            target = resolve(files, base, names)
            if target is not None and target == tuple(base) + tuple(names):
                aliases[names[-1] if names[-1] != "self" else target[-1]] = target
            elif target is not None and names[-1] == "self":
                aliases[target[-1]] = target
            if target is not None and target != module and target != ():
                # A parent module named only as a path prefix is not a dependency of its child.
                if module[: len(target)] == target:
                    continue
                graph[module].add(target)
        # Paths through an imported module name: `use crate::http;` then `http::server::serve`.
        for alias, alias_target in aliases.items():
            for rest in re.findall(r"(?<![:\w])" + re.escape(alias) + r"((?:::[A-Za-z_][A-Za-z0-9_]*)+)", text):
                target = resolve(files, alias_target, [n for n in rest.split("::") if n])
                if target is not None and target != module and module[: len(target)] != target:
                    graph[module].add(target)
    return graph


def circles(graph):
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in graph:
        if node not in index:
            visit(node)
    return result


def main():
    arguments = sys.argv[1:]
    check = "--check" in arguments
    crates = [argument for argument in arguments if argument != "--check"]
    total = 0
    for crate in crates or ["crates/proxy"]:
        graph = edges_of(os.path.join(crate, "src"))
        found = circles(graph)
        total += len(found)
        print(f"{crate}: {len(graph)} files, {sum(len(v) for v in graph.values())} edges, {len(found)} circles")
        for component in sorted(found, key=len, reverse=True):
            print("  " + " <-> ".join("/".join(m) or "lib" for m in component))
    if check and total:
        print(f"import-graph: {total} circle(s); a lower module should hold what both sides need")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
