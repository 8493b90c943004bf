#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A TCP relay that can forget its flows the way a stateful firewall does.

Usage: blackhole_relay.py TARGET_HOST TARGET_PORT

Listens on two free loopback ports and prints one JSON line on stdout:
  {"port": RELAY_PORT, "control": CONTROL_PORT}
Every connection to RELAY_PORT is relayed byte for byte to
TARGET_HOST:TARGET_PORT (TLS passes through untouched, so the client still
sees the target's certificate). The control port takes one command per
line and answers one line:
  blackhole  every connection relayed so far stops being forwarded, in both
             directions, and is no longer read; its sockets stay open (no
             FIN, no RST): exactly what a client sees when a firewall or NAT
             silently drops an idle flow. New connections work as before.
             Answer: "ok N" (N = connections black-holed by this command).
  stats      "accepted A live L blackholed B"
  quit       the relay exits.
The relay runs until "quit" or SIGTERM.
"""
import json
import selectors
import signal
import socket
import sys


class Relay:
    def __init__(self, host, port):
        self.target = (host, port)
        self.sel = selectors.DefaultSelector()
        self.pairs = {}  # socket -> peer socket, for forwarded flows
        self.dead = []  # black-holed sockets, kept open on purpose
        self.accepted = 0
        self.running = True
        self.lsock = self._listen()
        self.csock = self._listen()
        self.sel.register(self.lsock, selectors.EVENT_READ, self._accept)
        self.sel.register(self.csock, selectors.EVENT_READ, self._accept_ctl)

    @staticmethod
    def _listen():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        return s

    def _accept(self, lsock):
        client, _ = lsock.accept()
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()  # the target is down: the client sees a close
            return
        upstream.settimeout(None)
        self.accepted += 1
        self.pairs[client] = upstream
        self.pairs[upstream] = client
        self.sel.register(client, selectors.EVENT_READ, self._forward)
        self.sel.register(upstream, selectors.EVENT_READ, self._forward)

    def _close_pair(self, s):
        peer = self.pairs.pop(s, None)
        for x in (s, peer):
            if x is None:
                continue
            self.pairs.pop(x, None)
            try:
                self.sel.unregister(x)
            except (KeyError, ValueError):
                pass
            x.close()

    def _forward(self, s):
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._close_pair(s)
            return
        try:
            self.pairs[s].sendall(data)
        except OSError:
            self._close_pair(s)

    def _blackhole(self):
        n = 0
        for s in list(self.pairs):
            self.sel.unregister(s)
            self.dead.append(s)
            n += 1
        self.pairs.clear()
        return n // 2

    def _accept_ctl(self, csock):
        conn, _ = csock.accept()
        conn.setblocking(True)
        self.sel.register(conn, selectors.EVENT_READ, self._control)

    def _control(self, conn):
        try:
            line = conn.recv(256).decode("ascii", "replace").strip()
        except OSError:
            line = ""
        if not line:
            self.sel.unregister(conn)
            conn.close()
            return
        if line == "blackhole":
            reply = "ok %d" % self._blackhole()
        elif line == "stats":
            reply = "accepted %d live %d blackholed %d" % (
                self.accepted, len(self.pairs) // 2, len(self.dead) // 2)
        elif line == "quit":
            reply = "bye"
            self.running = False
        else:
            reply = "ERR unknown command"
        try:
            conn.sendall((reply + "\n").encode())
        except OSError:
            pass

    def run(self):
        print(json.dumps({"port": self.lsock.getsockname()[1],
                          "control": self.csock.getsockname()[1]}),
              flush=True)
        while self.running:
            for key, _ in self.sel.select(timeout=1.0):
                key.data(key.fileobj)


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    Relay(sys.argv[1], int(sys.argv[2])).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
