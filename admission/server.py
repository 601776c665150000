"""The webhook server: an ASGI application served by uvicorn over HTTPS.

    POST /validate   AdmissionReview admission.k8s.io/v1 in, AdmissionReview out
    POST /mutate     the same, answered with a JSONPatch placing confidential pods
    GET  /healthz    the process answers
    GET  /readyz     the policy is loaded and the server is not shutting down
    GET  /metrics    Prometheus metrics, on their own plain-HTTP port

Bodies are bounded; a malformed or oversized AdmissionReview gets an HTTP 400, and a
review that fails inside mlbom is a well-formed denial (fail closed), never a crash. The
TLS certificate and key are reloaded into the live SSL context when their files change, so
new connections get the new certificate and open ones are not dropped. Every decision is a
JSON line on stderr and, with a decision log, a durable record (`admission/recorder.py`).
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import itertools
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.utils import floatToGoString

from admission.recorder import Recorder, RecordingError
from admission.reviewer import AdmissionRequest, Decision, MalformedReview, Reviewer, parse_review

if TYPE_CHECKING:
    from admission.scan import ScanResult

log = logging.getLogger("mlbom.admission")
MAX_BODY = 3 << 20  # the API server's own request limit is about 3 MiB
CERT_POLL_SECONDS = 2.0

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
CountsBy = collections.Counter[tuple[str, ...]]


LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 8, 10)


class Metrics:
    """The webhook's Prometheus metrics. Counts are plain integers updated by the event loop
    (a prometheus_client metric takes a lock per update, a tenth of a warm request) and
    turned into metric families when /metrics is scraped, on the same loop."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests: CountsBy = collections.Counter()  # (path, status)
        self.decisions: CountsBy = collections.Counter()  # (allowed, category, mode)
        self.cache: CountsBy = collections.Counter()  # (result,)
        self.latency = [0] * (len(LATENCY_BUCKETS) + 1)  # the last: above every bucket
        self.latency_sum = 0.0
        self.scan: ScanResult | None = None  # the last background scan
        self.registry.register(self)

    def scanned(self, result: ScanResult) -> None:
        self.scan = result

    def cache_lookup(self, hit: bool) -> None:
        self.cache["hit" if hit else "miss",] += 1

    def request(self, path: str, status: int, seconds: float) -> None:
        self.requests[path, str(status)] += 1
        self.latency[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds

    def decision(self, decision: Decision) -> None:
        allowed = "true" if decision.allowed else "false"
        self.decisions[allowed, decision.category, decision.mode or ""] += 1

    def collect(self) -> Iterator[Metric]:
        for name, documentation, labels, counts in (
            ("mlbom_admission_requests", "AdmissionReview requests", ["path", "status"], self.requests),
            ("mlbom_admission_decisions", "Decisions by outcome and reason category", ["allowed", "category", "mode"], self.decisions),
            ("mlbom_admission_verification_cache", "Verification cache lookups", ["result"], self.cache),
        ):  # fmt: skip
            family = CounterMetricFamily(name, documentation, labels=labels)
            for values, count in sorted(counts.items()):
                family.add_metric(list(values), count)
            yield family
        if self.scan is not None:
            yield from _scan_families(self.scan)
        cumulative = list(itertools.accumulate(self.latency))
        yield HistogramMetricFamily(
            "mlbom_admission_latency_seconds", "Time to answer an AdmissionReview",
            buckets=[*((floatToGoString(b), c) for b, c in zip(LATENCY_BUCKETS, cumulative, strict=False)), ("+Inf", cumulative[-1])],
            sum_value=self.latency_sum,
        )  # fmt: skip


def _scan_families(scan: ScanResult) -> Iterator[Metric]:
    """The last background scan: what was scanned, what would be denied or warned, when."""
    objects = GaugeMetricFamily("mlbom_scan_objects", "Objects decided by the last scan, by result", labels=["result"])  # fmt: skip
    for result, count in sorted(collections.Counter(f.result for f in scan.findings).items()):
        objects.add_metric([result], count)
    yield objects
    violations = GaugeMetricFamily("mlbom_scan_violations", "Objects the last scan would deny or warn about, by reason", labels=["reason"])  # fmt: skip
    for reason, count in sorted(scan.by_reason().items()):
        violations.add_metric([reason], count)
    yield violations
    yield GaugeMetricFamily("mlbom_scan_last_timestamp_seconds", "When the last scan started", value=scan.started)  # fmt: skip
    yield GaugeMetricFamily("mlbom_scan_duration_seconds", "How long the last scan took", value=scan.seconds)  # fmt: skip
    yield GaugeMetricFamily("mlbom_scan_api_requests", "API server requests of the last scan", value=scan.api_requests)  # fmt: skip


class WebhookApp:
    """The ASGI application for /validate, /mutate, /healthz and /readyz."""

    def __init__(self, reviewer: Reviewer, metrics: Metrics, recorder: Recorder) -> None:
        self.reviewer = reviewer
        self.metrics = metrics
        self.recorder = recorder
        self.ready = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/healthz":  # a webhook that cannot record decisions wants a restart
            ok = self.recorder.healthy
            return await _respond(send, 200 if ok else 503, b"ok\n" if ok else b"cannot record decisions\n", b"text/plain")  # fmt: skip
        if path == "/readyz":
            ok = self.ready and self.recorder.healthy
            return await _respond(send, 200 if ok else 503, b"ok\n" if ok else b"not ready\n", b"text/plain")  # fmt: skip
        if path not in ("/validate", "/mutate"):
            return await _respond(send, 404, b"not found\n", b"text/plain")
        if method != "POST":
            return await _respond(send, 405, b"POST an AdmissionReview\n", b"text/plain")
        start = time.perf_counter()
        status, body = await self._answer(scope, receive, path.removeprefix("/"))
        self.metrics.request(path, status, time.perf_counter() - start)
        await _respond(send, status, body, b"application/json")

    async def _answer(self, scope: Scope, receive: Receive, webhook: str) -> tuple[int, bytes]:
        body = await _read_body(scope, receive)
        if body is None:
            return 413, _error(f"the body is larger than {MAX_BODY} bytes")
        try:
            request = parse_review(body)
        except MalformedReview as e:
            return 400, _error(str(e))
        decide = self.reviewer.review if webhook == "validate" else self.reviewer.mutate
        try:
            decision = await decide(request)
        except MalformedReview as e:
            return 400, _error(str(e))
        except Exception as e:  # fail closed: a well-formed denial, and the details in the log
            log.exception("reviewing failed")
            decision = Decision(False, f"mlbom could not review this request ({type(e).__name__}); denied", "error")  # fmt: skip
        decision = await self._record(decision, request, webhook)
        self.metrics.decision(decision)
        return 200, decision.answer(request.uid)

    async def _record(
        self, decision: Decision, request: AdmissionRequest, webhook: str
    ) -> Decision:
        """Record the decision (a dry run writes nothing; the mutating webhook keeps what it
        changed or refused); one that cannot be made durable becomes a denial."""
        durable = not request.dry_run and (webhook == "validate" or bool(decision.patch) or not decision.allowed)  # fmt: skip
        try:
            await self.recorder.record(decision.record_json(request, webhook), durable=durable)
        except RecordingError as e:
            log.error("the decision for request %s could not be recorded (%s): denied", request.uid, e)  # fmt: skip
            if not decision.allowed:
                return decision
            return Decision(False, f"{e}; denied rather than admitted without a record", "error")
        return decision


class MetricsApp:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        if scope["type"] != "http":
            return
        if scope["path"] == "/metrics":
            return await _respond(send, 200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST.encode())  # fmt: skip
        if scope["path"] in ("/healthz", "/readyz"):
            return await _respond(send, 200, b"ok\n", b"text/plain")
        await _respond(send, 404, b"not found\n", b"text/plain")


async def _read_body(scope: Scope, receive: Receive) -> bytes | None:
    """The request body, or None once it passes MAX_BODY (the rest is not read)."""
    for name, value in scope.get("headers", []):
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
            return None
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _error(message: str) -> bytes:
    return msgspec.json.encode({"error": message})


class JsonLogs(logging.Formatter):
    """The server's own log lines as JSON, like the decision lines beside them."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return msgspec.json.encode(entry).decode()


class CertificateReloader:
    """Loads a changed certificate and key into the live SSL context (new handshakes use
    them; open connections keep theirs). A half-written pair is retried on the next poll."""

    def __init__(self, context: ssl.SSLContext, cert: Path, key: Path) -> None:
        self.context, self.cert, self.key = context, cert, key
        self._stamp = self._stat()

    def _stat(self) -> tuple[float, float, int, int]:
        c, k = self.cert.stat(), self.key.stat()
        return (c.st_mtime, k.st_mtime, c.st_ino, k.st_ino)

    def poll(self) -> bool:
        try:
            stamp = self._stat()
            if stamp == self._stamp:
                return False
            self.context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as e:
            log.warning("certificate not reloaded yet: %s", e)
            return False
        self._stamp = stamp
        log.info("reloaded the TLS certificate from %s", self.cert)
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(CERT_POLL_SECONDS)
            self.poll()


async def serve(
    reviewer: Reviewer,
    metrics: Metrics,
    *,
    host: str,
    port: int,
    metrics_port: int | None,
    tls_cert: Path,
    tls_key: Path,
    scanner: Callable[[Metrics], Awaitable[None]] | None = None,
) -> None:
    """Run the webhook (HTTPS) and the metrics endpoint (HTTP) until stopped; `scanner`, the
    background scan, beside them."""
    import uvicorn

    recorder = Recorder(reviewer.policy.decision_log)
    await recorder.start()
    app = WebhookApp(reviewer, metrics, recorder)
    config = uvicorn.Config(
        app, host=host, port=port, ssl_certfile=str(tls_cert), ssl_keyfile=str(tls_key),
        log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=10,
    )  # fmt: skip
    config.load()
    servers = [uvicorn.Server(config)]
    if metrics_port is not None:
        metrics_config = uvicorn.Config(
            MetricsApp(metrics), host=host, port=metrics_port, log_config=None, access_log=False
        )
        servers.append(uvicorn.Server(metrics_config))
    assert config.ssl is not None
    # --discover: the first read of the cluster before serving (bounded; a failure only
    # logs), then one in the background every interval
    cluster = reviewer.cluster
    if cluster is not None:
        await cluster.start()
    reloader = asyncio.ensure_future(CertificateReloader(config.ssl, tls_cert, tls_key).run())
    scanning = asyncio.ensure_future(scanner(metrics)) if scanner else None
    tasks = [asyncio.ensure_future(s.serve()) for s in servers]
    try:
        # A signal stops whichever server caught it; the other follows.
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        app.ready = False
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        reloader.cancel()
        if scanning is not None:
            scanning.cancel()
        await recorder.close()
        if cluster is not None:
            await cluster.stop()


def run(reviewer: Reviewer, metrics: Metrics, **options: Any) -> None:
    """`serve` on uvloop when it is installed (uvicorn's own choice: several times the
    request rate of the default loop), else on asyncio's loop."""
    import gc

    for handler in logging.getLogger().handlers:
        handler.setFormatter(JsonLogs())
    # Everything loaded so far lives as long as the server: keep the collector off it, and
    # let short-lived request objects go by reference counting rather than frequent sweeps.
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(reviewer, metrics, **options))
    else:
        uvloop.run(serve(reviewer, metrics, **options))
