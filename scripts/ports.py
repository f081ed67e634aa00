#!/usr/bin/env python3
"""TCP ports for the servers that tests, the demo and the benchmarks start on loopback.

  ports.py free [N]     N (default 1) distinct ports that nothing listens on, one per line
  ports.py is-free PORT exit 0 when nothing listens on PORT
  ports.py holder PORT  which process listens on PORT (for "could not start" messages)

A fixed port can be taken at the wrong moment: Linux hands ports of its ephemeral range
(net.ipv4.ip_local_port_range, 32768-60999 here) to every outgoing connection, and a leftover
server of an earlier run may still hold one. So ports are drawn at random from outside that range
(below it, from 20000), and each is checked free by binding it. A server that can bind port 0
itself (the Hub stand-in) does that instead and reports the port it got.
"""

import random
import socket
import subprocess
import sys

LOWEST = 20000


def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def candidates() -> list[int]:
    low, high = ephemeral_range()
    ports = list(range(LOWEST, low)) + list(range(high + 1, 65536))
    return [p for p in ports if not low <= p <= high]


def is_free(port: int) -> bool:
    # The wildcard address conflicts with a listener on any address, 127.0.0.1 included.
    for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.bind((address, port))
        except OSError as e:
            if family == socket.AF_INET6 and e.errno in (97, 99):  # no IPv6 here: IPv4 decided
                continue
            return False
    return True


def free(count: int) -> list[int]:
    pool = candidates()
    random.SystemRandom().shuffle(pool)
    chosen = []
    for port in pool:
        if is_free(port):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    sys.exit(f"ports.py: fewer than {count} free ports outside the ephemeral range")


def holder(port: int) -> str:
    try:
        out = subprocess.run(["ss", "-Htlnp", f"( sport = :{port} )"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"port {port}: cannot ask ss ({e})"
    if not out:
        return f"port {port}: no process listens on it now"
    return f"port {port} is held by: " + " | ".join(" ".join(line.split()) for line in out.splitlines())


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "free":
        print("\n".join(str(p) for p in free(int(sys.argv[2]) if len(sys.argv) > 2 else 1)))
    elif len(sys.argv) == 3 and sys.argv[1] == "is-free":
        sys.exit(0 if is_free(int(sys.argv[2])) else 1)
    elif len(sys.argv) == 3 and sys.argv[1] == "holder":
        print(holder(int(sys.argv[2])))
    else:
        sys.exit(__doc__)
