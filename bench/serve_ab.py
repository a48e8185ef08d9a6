"""fashion-serve against itself at another revision, under wrk, alternating rounds.

    git worktree add --detach /tmp/before REV
    python -m bench.serve_ab /tmp/before/src --seconds 8 --rounds 4

Both servers (this checkout's ``src`` and ``OTHER_SRC``, the same interpreter and
packages) run at once; wrk loads them in turn, round after round (the order swapped every
round), for each model and encoding of the serving bench (``bench/serve.py``: 64
connections, single-image requests). Printed: each round's requests/s, and per case the
median ratio of this checkout's requests/s to the other's, with the spread of the
per-round ratios as the noise. For "speed within noise of before" claims; not part of
``make bench``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench.common import ROOT, WORK
from bench.serve import ENCODINGS, MODELS, _bodies, _free_port, _wait_ready, _wrk
from bench.serve import case as request_case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other_src", type=Path, help="the other revision's src folder")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--cases", default="", help="e.g. cnn/multipart,cnn/binary (all)")
    args = parser.parse_args()
    if not (args.other_src / "fashion_onnx").is_dir():
        raise SystemExit(f"{args.other_src} holds no fashion_onnx package")
    from fashion_onnx.fashion_mnist import load_split

    image = load_split("test")[0][0]  # the serving bench's image
    cases = [f"{m}/{e}" for m in MODELS for e in ENCODINGS]
    if args.cases:
        cases = [c for c in args.cases.split(",") if c in cases]
    work = WORK / "serve_ab"
    work.mkdir(parents=True, exist_ok=True)
    sources = {"this": ROOT / "src", "other": args.other_src.resolve()}
    ports = {name: _free_port() for name in sources}
    servers = {
        name: subprocess.Popen(
            [sys.executable, "-m", "fashion_onnx.serve", "--port", str(ports[name])],
            env={**os.environ, "PYTHONPATH": str(src)},
            cwd=work,  # not this checkout's root, whose src would shadow the other's
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, src in sources.items()
    }
    rates: dict[str, dict[str, list[float]]] = {c: {"this": [], "other": []} for c in cases}
    try:
        for name, process in servers.items():
            _wait_ready(ports[name], "/", process)
        bodies = _bodies(image)
        for round_ in range(args.rounds):
            for case in cases:
                model, encoding = case.split("/")
                script, path = request_case(work, bodies, model, encoding)
                order = ("other", "this") if round_ % 2 == 0 else ("this", "other")
                for name in order:
                    url = f"http://127.0.0.1:{ports[name]}{path}"
                    run = _wrk(url, script, args.seconds, servers[name].pid)
                    if run["failed"]:
                        raise SystemExit(f"{name} failed {run['failed']:.0f} requests on {case}")
                    rates[case][name].append(run["requests_per_s"])
                print(
                    f"round {round_ + 1} {case}: this {rates[case]['this'][-1]:,.0f} req/s, "
                    f"other {rates[case]['other'][-1]:,.0f} req/s",
                    flush=True,
                )
    finally:
        for process in servers.values():
            process.terminate()
            process.wait(20)
    for case, found in rates.items():
        ratios = [a / b for a, b in zip(found["this"], found["other"], strict=True)]
        print(
            f"{case}: this / other = {statistics.median(ratios):.3f}x "
            f"(rounds {min(ratios):.3f}-{max(ratios):.3f}; this median "
            f"{statistics.median(found['this']):,.0f} req/s, other "
            f"{statistics.median(found['other']):,.0f})"
        )


if __name__ == "__main__":
    main()
