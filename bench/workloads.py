"""Interpreter workloads for bench/issue6_report.py, one per kind of work pyperformance measures.

Run by the interpreter under test: `python workloads.py NAME LOOPS` runs NAME once to warm up,
then LOOPS times, and prints the seconds the LOOPS took. LOOPS=0 runs only the warm-up, which
callgrind counts subtract to leave the workload's own instructions. Standard library only, and
Python 3.9 syntax, so every interpreter compared can run it.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import re
import sys
import time


def nbody(steps: int = 8000) -> float:
    """Float arithmetic on attributes of a few bodies (pyperformance: nbody)."""
    bodies = [
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 39.47],
        [4.84, -1.16, -0.10, 0.60, 2.81, -0.02, 0.037],
        [8.34, 4.12, -0.40, -1.01, 1.82, 0.008, 0.011],
        [12.89, -15.11, -0.22, 1.08, 0.86, -0.01, 0.0017],
        [15.37, -25.91, 0.17, 0.97, 0.59, -0.03, 0.002],
    ]
    pairs = [(bodies[i], bodies[j]) for i in range(5) for j in range(i + 1, 5)]
    dt = 0.01
    for _ in range(steps):
        for a, b in pairs:
            dx, dy, dz = a[0] - b[0], a[1] - b[1], a[2] - b[2]
            mag = dt * (dx * dx + dy * dy + dz * dz) ** -1.5
            bm, am = b[6] * mag, a[6] * mag
            a[3] -= dx * bm
            a[4] -= dy * bm
            a[5] -= dz * bm
            b[3] += dx * am
            b[4] += dy * am
            b[5] += dz * am
        for body in bodies:
            body[0] += dt * body[3]
            body[1] += dt * body[4]
            body[2] += dt * body[5]
    return bodies[0][0]


class _Account:
    __slots__ = ("balance", "history", "owner")

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.balance = 0
        self.history: list[int] = []

    def deposit(self, amount: int) -> None:
        self.balance += amount
        self.history.append(amount)

    def withdraw(self, amount: int) -> bool:
        if amount > self.balance:
            return False
        self.balance -= amount
        self.history.append(-amount)
        return True


class _Bank:
    def __init__(self, size: int) -> None:
        self.accounts = [_Account(f"owner{i}") for i in range(size)]

    def transfer(self, src: int, dst: int, amount: int) -> bool:
        if self.accounts[src].withdraw(amount):
            self.accounts[dst].deposit(amount)
            return True
        return False


def objects(rounds: int = 60000) -> int:
    """Method calls, attribute access and small allocations (pyperformance: richards, chaos)."""
    bank = _Bank(64)
    for account in bank.accounts:
        account.deposit(1000)
    done = 0
    seed = 12345
    for _ in range(rounds):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        done += bank.transfer(seed % 64, (seed >> 8) % 64, seed % 300)
    return done


def fannkuch(n: int = 8) -> int:
    """List slicing and reversal (pyperformance: fannkuch)."""
    perm1 = list(range(n))
    count = list(range(1, n + 1))
    best = 0
    r = n
    while True:
        while r != 1:
            count[r - 1] = r
            r -= 1
        perm = perm1[:]
        flips = 0
        k = perm[0]
        while k:
            perm[: k + 1] = perm[k::-1]
            flips += 1
            k = perm[0]
        best = max(best, flips)
        while r != n:
            perm1.insert(r, perm1.pop(0))
            count[r] -= 1
            if count[r] > 0:
                break
            r += 1
        else:
            return best


def spectral_norm(n: int = 180) -> float:
    """Nested loops of small function calls and float division (pyperformance: spectral_norm)."""

    def a(i: int, j: int) -> float:
        return 1.0 / ((i + j) * (i + j + 1) // 2 + i + 1)

    u = [1.0] * n
    for _ in range(4):
        v = [sum(a(i, j) * u[j] for j in range(n)) for i in range(n)]
        u = [sum(a(j, i) * v[j] for j in range(n)) for i in range(n)]
    return sum(u)


_DOC = {
    "name": "relocpy",
    "versions": [{"v": f"3.{i}", "tags": ["a", "b", "c"], "size": i * 1.5} for i in range(40)],
    "nested": {"k" + str(i): {"x": i, "y": [i, i + 1, None, True]} for i in range(40)},
    "text": "Grüße, 世界 — " * 10,
}


def json_roundtrip(rounds: int = 600) -> int:
    """json.dumps/loads of a nested document (pyperformance: json_dumps, json_loads)."""
    size = 0
    for _ in range(rounds):
        size += len(json.loads(json.dumps(_DOC))["versions"])
    return size


def pickle_roundtrip(rounds: int = 1500) -> int:
    """pickle of the same document (pyperformance: pickle, unpickle)."""
    size = 0
    for _ in range(rounds):
        size += len(pickle.loads(pickle.dumps(_DOC, protocol=pickle.HIGHEST_PROTOCOL)))
    return size


_LOG = "\n".join(
    f"2026-11-{d:02d} 12:{m:02d}:07 host{m % 7} GET /api/v{d % 3}/items/{d * m} 200 {m * 31} ms"
    for d in range(1, 28)
    for m in range(60)
)
_LINE = re.compile(r"^(\S+) (\S+) (host\d) (GET|POST) (/\S+) (\d{3}) (\d+) ms$", re.M)


def regex(rounds: int = 40) -> int:
    """Matching and group extraction over a log (pyperformance: regex_v8, regex_effbot)."""
    total = 0
    for _ in range(rounds):
        total += sum(int(m.group(7)) for m in _LINE.finditer(_LOG))
        total += len(re.findall(r"/items/(\d+)", _LOG))
    return total


def generators(n: int = 300000) -> int:
    """Generator pipelines and comprehensions (pyperformance: generators, comprehensions)."""

    def numbers(limit: int):
        i = 0
        while i < limit:
            yield i
            i += 1

    evens = (x for x in numbers(n) if x % 2 == 0)
    squares = [x * x for x in evens if x % 3]
    return len({x % 1000: x for x in squares})


def strings(rounds: int = 30000) -> int:
    """str formatting, joining, splitting and dict lookups (pyperformance: unpack_sequence,
    logging, string formatting benchmarks)."""
    counts: dict[str, int] = {}
    for i in range(rounds):
        line = f"{i:05d}|{i * 7 % 13}|{'x' * (i % 5)}|{i / 3:.2f}"
        for field in line.split("|"):
            counts[field] = counts.get(field, 0) + 1
        "-".join(sorted(line.upper().split("|")))
    return len(counts)


def coroutines(tasks: int = 5000) -> int:
    """asyncio tasks passing values through a queue (pyperformance: async_tree, coroutines)."""

    async def producer(queue: asyncio.Queue, n: int) -> None:
        for i in range(n):
            await queue.put(i)

    async def main() -> int:
        queue: asyncio.Queue = asyncio.Queue()
        await asyncio.gather(*(producer(queue, 5) for _ in range(tasks)))
        total = 0
        while not queue.empty():
            total += await queue.get()
        return total

    return asyncio.run(main())


WORKLOADS = {
    f.__name__: f
    for f in (
        nbody,
        objects,
        fannkuch,
        spectral_norm,
        json_roundtrip,
        pickle_roundtrip,
        regex,
        generators,
        strings,
        coroutines,
    )
}


def main() -> None:
    name, loops = sys.argv[1], int(sys.argv[2])
    work = WORKLOADS[name]
    work()
    start = time.perf_counter()
    for _ in range(loops):
        work()
    print(f"{time.perf_counter() - start:.6f}")


if __name__ == "__main__":
    main()
