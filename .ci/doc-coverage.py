#!/usr/bin/env python3
"""Lists the public symbols of the given modules that have no doc comment, from the
symbol graphs `swift package generate-documentation` extracted; exits 1 if there is one.

Usage: doc-coverage.py SYMBOL_GRAPH_FOLDER MODULE...

Symbols with no source location (synthesized: `hashValue`, property-wrapper projections)
and extensions (DocC documents their members) do not count; neither do symbols declared
outside the module (a conformance's default implementation from another package).
"""
import json
import pathlib
import sys

folder = pathlib.Path(sys.argv[1])
missing = []
counted = 0
for module in sys.argv[2:]:
    for graph in sorted((folder / module).glob("*.symbols.json")):
        for symbol in json.loads(graph.read_text())["symbols"]:
            if symbol.get("accessLevel") not in ("public", "open"):
                continue
            uri = symbol.get("location", {}).get("uri", "")
            if f"/Sources/{module}/" not in uri or symbol["kind"]["identifier"] == "swift.extension":
                continue
            counted += 1
            if "docComment" not in symbol:
                line = symbol["location"]["position"]["line"] + 1
                missing.append(f"{uri.split('/Sources/')[-1]}:{line}: {'.'.join(symbol['pathComponents'])}")
print(f"{counted} public symbols in {len(sys.argv) - 2} modules, {len(missing)} without a doc comment")
for entry in sorted(set(missing)):
    print("  " + entry)
sys.exit(1 if missing else 0)
