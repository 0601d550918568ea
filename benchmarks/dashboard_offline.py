#!/usr/bin/env python3
"""Make a published asv dashboard work without internet access.

asv's ``index.html`` loads jQuery, Flot, Bootstrap and three small plugins from public CDNs; on a
machine that cannot reach them (CI here, most compute clusters) the page shows only "external
(JavaScript) dependencies failed to load".  This script

- ``check DIR``: exits 1 unless DIR holds them all;
- ``fetch DIR``: downloads the same libraries, at the versions asv 0.6 asks for, from the npm
  registry (``npm pack``) and unpacks the files the dashboard uses into DIR;
- ``localise HTML_DIR --assets DIR``: copies them into ``HTML_DIR/vendor/`` and points the
  dashboard's ``<script>``/``<link>`` tags at those copies.

    python3 -m asv publish
    python3 benchmarks/dashboard_offline.py fetch build/asv-dashboard-assets
    python3 benchmarks/dashboard_offline.py localise .asv/html --assets build/asv-dashboard-assets
    python3 -m asv preview

Only the standard library is imported (asv imports every module of benchmarks/ to find benchmarks).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# CDN address asv 0.6 writes -> (npm package@version, file inside the package).  stupidtable
# 1.0.1 is not on npm; 1.1.3 has the same API (sorting the summary table).
ASSETS = {
    "https://code.jquery.com/jquery-3.3.1.min.js": ("jquery@3.3.1", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js": ("flot@0.8.3", "jquery.flot.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js": ("flot@0.8.3", "jquery.flot.time.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js": ("flot@0.8.3", "jquery.flot.selection.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js": ("flot@0.8.3", "jquery.flot.categories.js"),
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": ("flot-orderbars@1.0.0", "js/jquery.flot.orderBars.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js": ("stupid-table-plugin@1.1.3", "stupidtable.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": ("blueimp-md5@2.19.0", "js/md5.min.js"),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": ("bootstrap@3.1.1", "dist/js/bootstrap.min.js"),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css": ("bootstrap@3.1.1", "dist/css/bootstrap.min.css"),
}


def local_name(package: str, member: str) -> str:
    """File name of an asset in the assets folder and in HTML_DIR/vendor/."""
    return f"{package.replace('@', '-')}--{member.replace('/', '-')}"


def missing_assets(assets: Path) -> list[str]:
    return [local_name(p, m) for p, m in ASSETS.values() if not (assets / local_name(p, m)).is_file()]


def fetch(assets: Path) -> None:
    """``npm pack`` each package once and keep the files the dashboard loads."""
    if shutil.which("npm") is None:
        sys.exit("dashboard_offline: npm is needed to fetch the dashboard's libraries (Debian: apt-get install npm)")
    assets.mkdir(parents=True, exist_ok=True)
    packages = sorted({p for p, _ in ASSETS.values()})
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "--silent", *packages], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        for package in packages:
            name, version = package.rsplit("@", 1)
            with tarfile.open(Path(tmp) / f"{name}-{version}.tgz") as tar:
                for p, member in ASSETS.values():
                    if p == package:
                        data = tar.extractfile(f"package/{member}").read()
                        (assets / local_name(package, member)).write_bytes(data)
    print(f"fetched {len(ASSETS)} dashboard files into {assets}")


def localise(html_dir: Path, assets: Path) -> None:
    """Copy the assets into HTML_DIR/vendor/ and rewrite the CDN tags of every page to use them
    (their integrity attributes go too: they pin the CDN's builds, not these files)."""
    missing = missing_assets(assets)
    if missing:
        sys.exit(f"dashboard_offline: {assets} lacks {', '.join(missing)}; run `fetch {assets}` first")
    vendor = html_dir / "vendor"
    vendor.mkdir(exist_ok=True)
    for package, member in ASSETS.values():
        shutil.copyfile(assets / local_name(package, member), vendor / local_name(package, member))
    tag = re.compile(r'<(script|link)\b[^>]*?(?:src|href)="(https://[^"]+)"[^>]*>')
    pages = 0
    for page in html_dir.glob("*.html"):
        text = page.read_text()

        def swap(match):
            url = match[2]
            if url not in ASSETS:
                return match[0]
            local = "vendor/" + local_name(*ASSETS[url])
            out = match[0].replace(url, local)
            return re.sub(r'\s(?:integrity|crossorigin|referrerpolicy)(?:="[^"]*")?', "", out)

        new = tag.sub(swap, text)
        if new != text:
            page.write_text(new)
            pages += 1
    left = [m[2] for page in html_dir.glob("*.html") for m in tag.finditer(page.read_text())]
    print(f"localised {pages} page(s) of {html_dir}; scripts and styles still loaded from outside: {len(left)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fetch", help="download the dashboard's libraries from the npm registry")
    f.add_argument("assets", type=Path)
    c = sub.add_parser("check", help="exit 1 unless every library is in ASSETS")
    c.add_argument("assets", type=Path)
    loc = sub.add_parser("localise", help="point a published dashboard at local copies")
    loc.add_argument("html_dir", type=Path)
    loc.add_argument("--assets", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.command == "fetch":
        fetch(args.assets)
    elif args.command == "check":
        missing = missing_assets(args.assets)
        print(f"{args.assets}: {len(ASSETS) - len(missing)} of {len(ASSETS)} dashboard files present")
        return 1 if missing else 0
    else:
        localise(args.html_dir, args.assets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
