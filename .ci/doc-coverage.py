#!/usr/bin/env python3
"""Lists the public symbols of the given modules that have no doc comment, from the
symbol graphs `swift package generate-documentation` extracted; exits 1 if there is one.

Usage: doc-coverage.py EXTRACTED_SYMBOLS_FOLDER MODULE...
(the folder holds one folder per package checkout, named after its directory, then one per
module). A module with no public symbol found is an error too: the check would be empty.

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
empty = []
for module in sys.argv[2:]:
    before = counted
    for graph in sorted(folder.glob(f"*/{module}/*.symbols.json")):
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
    if counted == before:
        empty.append(module)
print(f"{counted} public symbols in {len(sys.argv) - 2} modules, {len(missing)} without a doc comment")
for entry in sorted(set(missing)):
    print("  " + entry)
if empty:
    print("no public symbols found for: " + ", ".join(empty) + f" (under {folder})")
sys.exit(1 if missing or empty else 0)
