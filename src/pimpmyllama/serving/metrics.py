"""`/metrics` in Prometheus' text format: requests by route and status, each model's
queue and batch, tokens, finished sequences by reason, and latency histograms."""

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from pimpmyllama.generation.params import Completion
from pimpmyllama.serving.engines import EnginePool

CONTENT_TYPE = CONTENT_TYPE_LATEST
_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)


class _Batchers:
    """Read at each scrape from the batchers' own counters (nothing to keep in sync)."""

    def __init__(self, pool: EnginePool):
        self.pool = pool

    def collect(self):
        gauges = {"queue_waiting": "requests waiting to join a batch", "batch_running": "sequences decoding"}
        counters = {"prompt_tokens": "prompt tokens computed", "cached_prompt_tokens": "prompt tokens reused from a cache",
                    "completion_tokens": "tokens generated", "decode_steps": "batched decoding steps",
                    "decode_rows": "sequences advanced, summed over steps"}
        families = {name: GaugeMetricFamily(f"pml_{name}", text, labels=["model"]) for name, text in gauges.items()}
        families |= {name: CounterMetricFamily(f"pml_{name}", text, labels=["model"]) for name, text in counters.items()}
        finished = CounterMetricFamily("pml_sequences_finished", "replies ended, by reason", labels=["model", "reason"])
        for batcher in self.pool.batchers():
            stats = getattr(batcher, "stats", None)
            if stats is None:
                continue
            values = {"queue_waiting": stats.waiting, "batch_running": stats.running,
                      "prompt_tokens": stats.prompt_tokens, "cached_prompt_tokens": stats.cached_tokens,
                      "completion_tokens": stats.completion_tokens, "decode_steps": stats.steps,
                      "decode_rows": stats.rows}
            for name, value in values.items():
                families[name].add_metric([batcher.name], value)
            for reason, count in dict(stats.finished).items():
                finished.add_metric([batcher.name, reason], count)
        yield from families.values()
        yield finished


class Metrics:
    def __init__(self, pool: EnginePool):
        self.registry = CollectorRegistry()
        self.requests = Counter("pml_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=self.registry)
        self.first_token = Histogram("pml_time_to_first_token_seconds", "from the request's turn in the queue to its "
                                     "first token", buckets=_SECONDS, registry=self.registry)
        self.latency = Histogram("pml_request_seconds", "a completion request from arrival to its last token",
                                 buckets=_SECONDS, registry=self.registry)
        self.registry.register(_Batchers(pool))

    def replied(self, completion: Completion | None, seconds: float) -> None:
        self.latency.observe(seconds)
        if completion is not None and completion.usage.completion_tokens:
            self.first_token.observe(completion.usage.prefill_seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class CountRequests:
    """ASGI middleware: counts every HTTP response by its route (the matched path
    template, so ids in paths do not make new series) and status."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = {}

        async def sending(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            self.metrics.requests.labels(getattr(route, "path", "other"), str(status.get("code", 500))).inc()
