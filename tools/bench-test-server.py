#!/usr/bin/python3
"""A small HTTP/1.1 keep-alive server for tools/test-bench.sh.

Listens on 127.0.0.1 (or ::1 with --ipv6) on a free port, writes the port to
the file named by --port-file, and serves until killed or --lifetime passes:

  /len          200, Content-Length body
  /chunked      200, chunked body in several chunks (with an extension and a trailer)
  /err          500
  /mix          rotates: Content-Length 200, chunked 200, 404, 500
  /close        200 with Connection: close
  /eof          200 without a length, delimited by closing the connection
  /split        100 Continue, then a chunked 200, written a few bytes at a time
  /big          200, 256 KiB Content-Length body
  /bigchunked   200, 256 KiB chunked body in 4000-byte chunks
  /garbage      not HTTP
  /slow         200 after a second
  /echo         200; remembers the Idempotency-Key header and the JSON body
  /stats        JSON: requests seen per path, and checks on what /echo got
"""
import argparse
import collections
import http.server
import json
import socket
import sys
import threading
import time

lock = threading.Lock()
counts = collections.Counter()
echo_keys = []
echo_bodies = []
BIG = bytes(range(256)) * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes

    def log_message(self, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send_len(self, status, payload, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def send_chunked(self, payload):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        out = b""
        for i in range(0, len(payload), 7):
            part = payload[i:i + 7]
            ext = b";x=1" if i == 0 else b""
            out += b"%x%s\r\n%s\r\n" % (len(part), ext, part)
        out += b"0\r\nX-Trailer: 1\r\n\r\n"
        self.wfile.write(out)

    def handle_any(self):
        body = self.body()
        path = self.path.split("?")[0]
        with lock:
            counts[path] += 1
            n = counts[path]
        if path == "/len":
            self.send_len(200, b"hello, length\n")
        elif path == "/chunked":
            self.send_chunked(b"hello, this is a chunked body of some length\n")
        elif path == "/err":
            self.send_len(500, b"boom\n")
        elif path == "/mix":
            kind = n % 4
            if kind == 0:
                self.send_len(200, b"ok\n")
            elif kind == 1:
                self.send_chunked(b"chunked ok, a few chunks long\n")
            elif kind == 2:
                self.send_len(404, b"not found\n")
            else:
                self.send_len(500, b"error\n")
        elif path == "/close":
            self.send_len(200, b"bye\n", [("Connection", "close")])
            self.close_connection = True
        elif path == "/eof":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until the end\n")
            self.close_connection = True
        elif path == "/split":
            raw = (b"HTTP/1.1 100 Continue\r\n\r\n"
                   b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n6;ext=\"a\"\r\n world\r\n0\r\n\r\n")
            for i in range(0, len(raw), 3):
                self.wfile.write(raw[i:i + 3])
        elif path == "/big":
            self.send_len(200, BIG)
        elif path == "/bigchunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"".join(b"%x\r\n%s\r\n" % (len(BIG[i:i + 4000]), BIG[i:i + 4000])
                                      for i in range(0, len(BIG), 4000)) + b"0\r\n\r\n")
        elif path == "/garbage":
            self.wfile.write(b"this is not HTTP\r\n\r\n")
        elif path == "/slow":
            time.sleep(1)
            self.send_len(200, b"late\n")
        elif path == "/echo":
            with lock:
                echo_keys.append(self.headers.get("Idempotency-Key", ""))
                echo_bodies.append(body.decode("utf-8", "replace"))
            self.send_len(200, b"{}")
        elif path == "/stats":
            with lock:
                parsed = []
                bad = 0
                for b in echo_bodies:
                    try:
                        parsed.append(json.loads(b))
                    except ValueError:
                        bad += 1
                seqs = [p.get("seq") for p in parsed]
                stats = {
                    "counts": dict(counts),
                    "echo": len(echo_keys),
                    "echo_unique_keys": len(set(echo_keys)),
                    "echo_bad_bodies": bad,
                    "echo_unique_seq": len(set(seqs)),
                    "echo_seq_ints": all(isinstance(s, int) for s in seqs),
                    "echo_key_matches_body": all(
                        k == p.get("key") for k, p in zip(echo_keys, parsed)),
                    "echo_key_is_uuid": all(
                        len(k) == 36 and k[14] == "4" and k.count("-") == 4 for k in echo_keys),
                }
            self.send_len(200, json.dumps(stats).encode())
        else:
            self.send_len(404, b"no such path\n")

    do_GET = do_POST = do_PUT = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        pass  # the benchmark closing connections with requests in flight


class Server6(Server):
    address_family = socket.AF_INET6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--ipv6", action="store_true")
    ap.add_argument("--lifetime", type=float, default=120.0)
    args = ap.parse_args()
    srv = Server6(("::1", 0), Handler) if args.ipv6 else Server(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    threading.Timer(args.lifetime, lambda: os._exit(0)).start()
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
