#!/usr/bin/env python3
"""A stand-in for ``nvidia-cuda-mps-control`` (tests of scripts/with_mps.py): ``-d`` starts a
daemon serving a Unix socket in $CUDA_MPS_PIPE_DIRECTORY; without arguments each line of stdin is
a command to it (``get_server_list``, ``quit``, and ``client`` for a test's stand-in CUDA process,
which the daemon logs as the real one does: 'NEW CLIENT'); rc 1 when no daemon answers."""

import os
import socket
import socketserver
import sys
from pathlib import Path


def _path() -> str:
    return os.path.join(os.environ["CUDA_MPS_PIPE_DIRECTORY"], "control.sock")


def _log(text: str) -> None:
    with open(os.path.join(os.environ["CUDA_MPS_LOG_DIRECTORY"], "control.log"), "a") as fh:
        fh.write(text + "\n")


def daemon() -> None:
    clients = []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            command = self.rfile.readline().decode().strip()
            if command == "client":
                clients.append(len(clients) + 1)
                _log(f"[stand-in] NEW CLIENT {len(clients)} from user {os.getuid()}: Server 4242 accepted")
                reply = ""
            elif command == "get_server_list":
                reply = "4242" if clients else ""
            elif command == "quit":
                _log("[stand-in] Exit")
                reply = ""
                self.server.quitting = True
            else:
                reply = f"unknown command {command}"
            self.wfile.write((reply + "\n").encode())

    server = socketserver.UnixStreamServer(_path(), Handler)
    server.quitting = False
    _log("[stand-in] Startup")
    while not server.quitting:
        server.handle_request()
    server.server_close()
    os.unlink(_path())


def main() -> int:
    if sys.argv[1:] == ["-d"]:
        if os.environ.get("STANDIN_REFUSE"):
            print("An instance of this daemon is already running", file=sys.stderr)
            return 1
        if os.fork() == 0:  # the daemon: detached, as the real one
            os.setsid()
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            try:
                daemon()
            finally:
                os._exit(0)
        return 0
    for line in sys.stdin:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(_path())
                sock.sendall(line.encode())
                print(sock.makefile().readline().strip())
        except OSError:
            print("Cannot find MPS control daemon process", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
