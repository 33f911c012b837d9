"""A minimal HTTP storage for ccache's ``remote_storage = http://...`` (GET / PUT / DELETE / HEAD of files).

For measuring a shared object cache between CI jobs on one machine (benchmarks/ci_cache.py); a team uses a real
server with the same protocol (docs/ci/README.md, "A shared object cache"). Not for production: no auth, no
eviction.

    python benchmarks/ccache_http_store.py --root DIR [--port 0] [--port-file F]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def make_handler(root: Path):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _path(self) -> Path | None:
            rel = self.path.split("?", 1)[0].lstrip("/")
            target = (root / rel).resolve()
            return target if str(target).startswith(str(root.resolve()) + os.sep) else None

        def _reply(self, code: int, body: bytes = b"") -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):  # noqa: N802 (http.server's names)
            p = self._path()
            if p is None or not p.is_file():
                return self._reply(404)
            return self._reply(200, p.read_bytes())

        do_HEAD = do_GET

        def do_PUT(self):  # noqa: N802
            p = self._path()
            n = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(n)
            if p is None:
                return self._reply(403)
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".put-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, p)
            return self._reply(201)

        def do_DELETE(self):  # noqa: N802
            p = self._path()
            if p is not None and p.is_file():
                p.unlink()
                return self._reply(200)
            return self._reply(404)

        def log_message(self, fmt, *args):  # one line per request, to stderr
            sys.stderr.write(f"{self.command} {self.path}\n")

    return Handler


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", required=True, type=Path)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", type=Path)
    args = p.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.root))
    if args.port_file:
        args.port_file.write_text(str(server.server_address[1]))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
