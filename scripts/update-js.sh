#!/usr/bin/env bash
# Refreshes the pinned JavaScript shipped inside the lotterysite package (lotterysite/site/vendor/) from
# package-lock.json: installs the locked versions with npm into a temporary folder, copies each UMD build and its
# LICENSE, and rewrites vendor/manifest.json (version, licence, npm integrity, SHA-256 of every file).
# Only maintainers run this, after changing package.json / package-lock.json; building a site never needs Node.
# Usage: scripts/update-js.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENDOR=lotterysite/site/vendor

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp package.json package-lock.json "$work/"
(cd "$work" && npm ci --silent --no-audit --no-fund --ignore-scripts)

# package name -> its UMD build, in load order: vega-lite and vega-embed expect the global `vega`;
# vega-loader-arrow registers vega.format.arrow.
builds=(
  "vega build/vega.min.js"
  "vega-lite build/vega-lite.min.js"
  "vega-embed build/vega-embed.min.js"
  "vega-loader-arrow build/vega-loader-arrow.min.js"
)
rm -f "$VENDOR"/*.js "$VENDOR"/*.LICENSE "$VENDOR"/manifest.json
for entry in "${builds[@]}"; do
  read -r name path <<<"$entry"
  cp "$work/node_modules/$name/$path" "$VENDOR/"
  cp "$work/node_modules/$name/LICENSE" "$VENDOR/$name.LICENSE"
done

${PYTHON:-python3} - "$work" "$VENDOR" "${builds[@]}" <<'PY'
import hashlib
import json
import sys
from pathlib import Path

work, vendor, builds = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
lock = json.loads((work / "package-lock.json").read_text())["packages"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


packages = []
for entry in builds:
    name, path = entry.split()
    meta = json.loads((work / "node_modules" / name / "package.json").read_text())
    locked = lock[f"node_modules/{name}"]
    assert meta["version"] == locked["version"], (name, meta["version"], locked["version"])
    js, licence = vendor / Path(path).name, vendor / f"{name}.LICENSE"
    packages.append({
        "name": name,
        "version": meta["version"],
        "license": meta["license"],
        "integrity": locked["integrity"],  # npm's hash of the package tarball, from package-lock.json
        "file": js.name,
        "sha256": sha256(js),
        "license_file": licence.name,
        "license_sha256": sha256(licence),
    })
manifest = {
    "comment": "Written by scripts/update-js.sh from package-lock.json; load order is the order of `packages`.",
    "packages": packages,
}
(vendor / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
print("\n".join(f"{p['file']}: {p['name']} {p['version']} ({p['license']})" for p in packages))
PY
