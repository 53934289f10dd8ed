"""A TCP proxy on loopback that a test can cut and heal: between a runner and
PostgreSQL, it stands for the network.

cut(): no byte goes through in either direction, on existing connections
and on new ones, and nothing is closed: what a dead switch looks like to
both ends, except that the local kernel still accepts and acknowledges.
heal(): everything held is delivered and traffic flows again; a side that
gave up meanwhile is seen closing, and the other side is closed too.
"""

import selectors
import socket
import threading

from jobrunner.testing.pgcluster import free_port


class CutProxy:
    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listen = socket.create_server(("127.0.0.1", self.port))
        self._flowing = threading.Event()
        self._flowing.set()
        self._stop = threading.Event()
        self._pairs = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def cut(self):
        self._flowing.clear()

    def heal(self):
        self._flowing.set()

    def close(self):
        self._stop.set()
        self._flowing.set()
        self._listen.close()
        with self._lock:
            for a, b in self._pairs:
                for s in (a, b):
                    try:
                        s.close()
                    except OSError:
                        pass

    def _accept(self):
        while not self._stop.is_set():
            try:
                client, _ = self._listen.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        self._flowing.wait()  # a new connection during a cut hangs, as its SYN would
        if self._stop.is_set():
            client.close()
            return
        try:
            server = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        with self._lock:
            self._pairs.append((client, server))
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, server)
        sel.register(server, selectors.EVENT_READ, client)
        try:
            while not self._stop.is_set():
                self._flowing.wait()
                for key, _ in sel.select(timeout=0.2):
                    self._flowing.wait()  # hold what arrived during a cut
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            for s in (client, server):
                try:
                    s.close()
                except OSError:
                    pass
