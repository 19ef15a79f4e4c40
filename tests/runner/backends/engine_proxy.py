"""A Unix socket that forwards to the real Docker engine and can be cut and
restored, so a test can take "the engine" away from flowbot without touching
the dockerd every test shares."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from pathlib import Path

import docker

ENGINE_SOCKET = "/var/run/docker.sock"


class EngineProxy:
    """Forwards ``path`` to the engine socket while started; cut by :meth:`stop`."""

    def __init__(self, target: str = ENGINE_SOCKET) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="fb-eng-", dir="/tmp"))  # short: sun_path limit
        self.path = self._dir / "docker.sock"
        self.target = target
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def client(self) -> docker.DockerClient:
        """A docker client talking through the proxy (API version fixed: no call now)."""
        return docker.DockerClient(base_url=self.url, version="1.41", timeout=60)

    def start(self) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(64)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and cut every open one, as a dead engine would."""
        with self._lock:
            listener, self._listener = self._listener, None
            open_now, self._open = self._open, set()
        if listener is not None:
            listener.close()
        self.path.unlink(missing_ok=True)
        for sock in open_now:
            _close(sock)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # stopped
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            with self._lock:
                if self._listener is not listener:
                    _close(conn)
                    _close(upstream)
                    return  # stopped while connecting
                self._open.update((conn, upstream))
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=_pump, args=(src, dst), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass  # cut by stop(), or the other side closed
    _close(src)
    _close(dst)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected any more
    sock.close()
