"""A real HTTP server on loopback for mirror tests: Range support, request counting, cut-offs."""

from __future__ import annotations

import http.server
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path


class MirrorServer:
    """Serves `root` on 127.0.0.1; can drop a connection after `cut_after` bytes of a body."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.gets: Counter[str] = Counter()
        self.cut_after: int | None = None
        self.delay_per_chunk = 0.0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                name = urllib.parse.unquote(self.path.lstrip("/"))
                path = server.root / name
                server.gets[name] += 1
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start = 0
                ranged = self.headers.get("Range")
                if ranged and ranged.startswith("bytes="):
                    start = int(ranged[6:].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                limit = server.cut_after if server.cut_after is not None else len(body)
                sent = 0
                for offset in range(0, min(limit, len(body)), 65536):
                    piece = body[offset : min(offset + 65536, limit)]
                    self.wfile.write(piece)
                    sent += len(piece)
                    if server.delay_per_chunk:
                        time.sleep(server.delay_per_chunk)
                if sent < len(body):
                    self.wfile.flush()
                    self.connection.shutdown(2)  # cut the download off mid-body

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that was killed or cut off: that is what the tests do

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> MirrorServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
