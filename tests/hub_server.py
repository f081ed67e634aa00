#!/usr/bin/env python3
"""A local stand-in for the Hugging Face Hub's file API, for ettin's download tests.

Serves ROOT/<org>/<name>/<path> at /<org>/<name>/resolve/<revision>/<path> the way the Hub does:
`x-repo-commit` and `etag` on every answer, Range requests (206 + Content-Range), and for large
files (.onnx, .safetensors) a 302 redirect to an absolute /lfs/... URL carrying
`x-linked-etag` and `x-linked-size`, like the Hub's LFS/CDN redirects. Unknown repos answer 401
RepositoryNotFound, unknown files 404 EntryNotFound, unknown revisions 404 RevisionNotFound.
Small files carry git's blob sha1 as ETag, LFS files their sha256, as on the Hub; the repo
"hubtest/corrupt" serves damaged LFS bytes. GET /_stats returns how many times each file's content was served (to prove single downloads).

Usage: hub_server.py ROOT PORT_FILE
Binds a free port of its own choosing (port 0) on 127.0.0.1 and writes the number to PORT_FILE
once it listens: no fixed port can be taken by another process first.
"""

import hashlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(sys.argv[1])
PORT_FILE = Path(sys.argv[2])
REVISIONS = {"main", "v1"}
LARGE = (".onnx", ".safetensors")
served: dict[str, int] = {}
lock = threading.Lock()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def git_sha1(path: Path) -> str:
    """The Hub's ETag for small (non-LFS) files: git's blob hash."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Hub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def error(self, code: int, kind: str, repo_commit: str | None = None):
        self.send_response(code)
        self.send_header("x-error-code", kind)
        if repo_commit:
            self.send_header("x-repo-commit", repo_commit)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def send_bytes(self, data: bytes, headers: dict, key: str):
        start, end = 0, len(data) - 1
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start = int(a or 0)
            end = min(int(b), len(data) - 1) if b else len(data) - 1
        body = data[start : end + 1]
        self.send_response(206 if rng else 200)
        for k, v in headers.items():
            self.send_header(k, v)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(body)
        if rng != "bytes=0-0":  # metadata probes do not count as downloads
            with lock:
                served[key] = served.get(key, 0) + 1

    def do_GET(self):
        path = unquote(self.path.split("?")[0])
        if path == "/_stats":
            data = json.dumps(served).encode()
            return self.send_bytes(data, {"Content-Type": "application/json"}, "_stats")
        if path.startswith("/lfs/"):  # the "CDN": /lfs/<org>/<name>/<file>
            f = ROOT / path[5:]
            if not f.is_file():
                return self.error(404, "EntryNotFound")
            data = f.read_bytes()
            if "/corrupt/" in path:  # a repo whose CDN serves damaged bytes
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            return self.send_bytes(data, {"ETag": f'"{sha256(f)}"'}, path[5:])
        parts = path.strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self.error(404, "EntryNotFound")
        org, name, _, revision = parts[:4]
        file = "/".join(parts[4:])
        repo = ROOT / org / name
        if not repo.is_dir():
            return self.error(401, "RepositoryNotFound")
        if revision not in REVISIONS:
            return self.error(404, "RevisionNotFound")
        commit = hashlib.sha1(f"{org}/{name}@{revision}".encode()).hexdigest()
        target = repo / file
        if not target.is_file():
            return self.error(404, "EntryNotFound", commit)
        sha = sha256(target)
        if target.suffix in LARGE:
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/lfs/{org}/{name}/{file}")
            self.send_header("x-repo-commit", commit)
            self.send_header("x-linked-etag", f'"{sha}"')
            self.send_header("x-linked-size", str(target.stat().st_size))
            self.send_header("ETag", f'"{hashlib.sha1(target.read_bytes()).hexdigest()}"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_bytes(target.read_bytes(), {"ETag": f'"{git_sha1(target)}"', "x-repo-commit": commit}, f"{org}/{name}/{file}")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # The tests cancel downloads and cut connections on purpose (statement_timeout, a killed
        # backend): a client that went away is expected, not a failure worth a traceback.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


if __name__ == "__main__":
    server = Server(("127.0.0.1", 0), Hub)
    # Written whole, then renamed: a reader never sees a partial number.
    PORT_FILE.with_suffix(".tmp").write_text(str(server.server_port))
    os.replace(PORT_FILE.with_suffix(".tmp"), PORT_FILE)
    server.serve_forever()
