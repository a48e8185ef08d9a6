"""The server's Prometheus metrics, in the text exposition format, without a client
library: request counts by model and status, request latency and batch size
histograms."""

from __future__ import annotations

import bisect
from collections import defaultdict

SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class Histogram:
    """Cumulative buckets, a sum and a count, per model."""

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...]) -> None:
        self.name, self.help, self.buckets = name, help_text, buckets
        self.counts: dict[str, list[int]] = defaultdict(lambda: [0] * (len(buckets) + 1))
        self.sums: dict[str, float] = defaultdict(float)

    def observe(self, model: str, value: float) -> None:
        self.counts[model][bisect.bisect_left(self.buckets, value)] += 1
        self.sums[model] += value

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for model, counts in sorted(self.counts.items()):
            total = 0
            for bound, count in zip((*self.buckets, float("inf")), counts, strict=True):
                total += count
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                out.append(f'{self.name}_bucket{{model="{model}",le="{le}"}} {total}')
            out.append(f'{self.name}_sum{{model="{model}"}} {self.sums[model]:.6f}')
            out.append(f'{self.name}_count{{model="{model}"}} {total}')
        return out


class Metrics:
    """What ``GET /metrics`` shows."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.seconds = Histogram(
            "fashion_serve_request_seconds", "Time to answer a request.", SECONDS_BUCKETS
        )
        self.batch = Histogram("fashion_serve_batch_size", "Images per model run.", BATCH_BUCKETS)

    def request(self, model: str, code: int, seconds: float) -> None:
        self.requests[(model, code)] += 1
        self.seconds.observe(model, seconds)

    def text(self) -> str:
        lines = [
            "# HELP fashion_serve_requests_total Requests answered, by model and status.",
            "# TYPE fashion_serve_requests_total counter",
        ]
        for (model, code), count in sorted(self.requests.items()):
            lines.append(f'fashion_serve_requests_total{{model="{model}",code="{code}"}} {count}')
        return "\n".join([*lines, *self.seconds.lines(), *self.batch.lines()]) + "\n"
