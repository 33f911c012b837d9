"""Which TH/ and THC/ headers a torch release ships, read from its PyPI wheel's zip directory.

Reads only the end of each wheel (HTTP range requests: the end-of-central-directory record, then the
central directory), not the 700+ MB wheel. Used to check the catalog's statement that torch 1.11
removed the TH/ headers and all THC/ headers but THCAtomics.cuh and THCDeviceUtils.cuh
(mamba_build/data/failures.toml, headers-missing's `unless`).

    python scripts/torch_wheel_headers.py 1.10.2 1.11.0 1.13.1

Run 2026-12-04 (PyPI, cp39 manylinux1 x86_64 wheels):
    1.10.2  TH/ 30 headers (TH/TH.h ...), THC/ 40 (THC/THC.h ...)
    1.11.0  TH/ 0, THC/ 2: THCAtomics.cuh THCDeviceUtils.cuh
    1.13.1  TH/ 0, THC/ 2: THCAtomics.cuh THCDeviceUtils.cuh
"""

from __future__ import annotations

import re
import struct
import sys

import requests

from mamba_build.build.sources import list_project_files

INDEX = "https://pypi.org/simple"


def central_directory(url: str, size: int) -> bytes:
    tail = requests.get(url, headers={"Range": f"bytes={size - 65536}-{size - 1}"}, timeout=60).content
    eocd = tail.rfind(b"PK\x05\x06")
    if eocd < 0:
        raise SystemExit(f"{url}: no end-of-central-directory record in the last 64 KiB")
    cd_size, cd_off = struct.unpack("<II", tail[eocd + 12 : eocd + 20])
    return requests.get(url, headers={"Range": f"bytes={cd_off}-{cd_off + cd_size - 1}"}, timeout=120).content


def main(versions: list[str]) -> int:
    files = list_project_files("torch", INDEX)  # PEP 691 JSON: filename, url, size
    for ver in versions:
        pattern = rf"torch-{re.escape(ver)}-cp39-cp39-manylinux\w*x86_64\.whl$"
        wheel = next((f for f in files if re.match(pattern, f.filename) and f.size), None)
        if wheel is None:
            print(f"{ver}: no cp39 manylinux x86_64 wheel (with its size) on {INDEX}")
            continue
        names = set(re.findall(rb"torch/include/(THC?/[\w./-]*?\.(?:h|cuh))", central_directory(wheel.url, wheel.size)))
        th = sorted(n.decode() for n in names if n.startswith(b"TH/"))
        thc = sorted(n.decode() for n in names if n.startswith(b"THC/"))
        print(f"{ver}  {wheel.filename}: TH/ {len(th)} headers {th[:3]}, THC/ {len(thc)} {thc[:6]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["1.10.2", "1.11.0"]))
