"""Scenario a: end to end over ZeroMQ on loopback, the real `ivuscal serve` in its own process.

A recorded pullback is replayed (`tools.replay.replay_file`) at 30 fps, 60 fps and as fast as
possible into the engine; a subscriber in this process receives the results. With `hog_rates`
the listed rates are replayed again with a CPU hog (bench/hog.py) busy on one core beside the
engine, started before and killed after each such run. Per rate:
engine-added latency (the engine's own published - received timestamps), source-to-result
latency (subscriber receipt - the sender's acquisition stamp, one clock on loopback), sustained
results/s, frames dropped (drop notices and frames never answered), and the server process's CPU
and peak memory (psutil).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from bench.hog import cpu_hog
from bench.monitor import ResourceMonitor, ResourceUsage
from bench.result import ScenarioResult
from bench.stats import latency_summary, rate
from engine.errors import InputError, InternalError
from engine.streaming.latency import stage_ms
from engine.streaming.subscriber import subscribe
from tools.replay import replay_file

NAME = "stream"
TITLE = "End to end over ZeroMQ (loopback): ivuscal serve + replay"
RATES: tuple[float | None, ...] = (30.0, 60.0, None)  # None: as fast as possible
HOG_RATES: tuple[float, ...] = (30.0, 60.0)  # replayed again beside a CPU hog with --hog


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class PullbackEvents:
    """What the subscriber saw of one replayed pullback."""

    results: list[tuple[int, dict]] = field(default_factory=list)  # (receipt wall ns, body)
    drops: int = 0
    gaps: int = 0
    summary: dict | None = None


class Collector:
    """Sorts engine events by pullback id, stamping each with its receipt time."""

    def __init__(self) -> None:
        self.pullbacks: dict[str, PullbackEvents] = {}
        self.heartbeat = threading.Event()
        self._changed = threading.Condition()

    def __call__(self, event: dict[str, Any]) -> None:
        now = time.time_ns()
        kind = event.get("kind")
        if kind == "heartbeat":
            self.heartbeat.set()
            return
        pullback = event.get("pullback")
        if pullback is None:
            return
        with self._changed:
            entry = self.pullbacks.setdefault(pullback, PullbackEvents())
            if kind == "result":
                entry.results.append((now, event))
            elif kind == "drop":
                entry.drops += 1
            elif kind == "gap":
                entry.gaps += len(event.get("frames", []))
            elif kind == "summary":
                entry.summary = event
            self._changed.notify_all()

    def wait_summary(self, pullback: str, timeout_s: float) -> PullbackEvents:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while (entry := self.pullbacks.get(pullback)) is None or entry.summary is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise InternalError(f"no summary for pullback {pullback} within {timeout_s:.0f} s")
                self._changed.wait(left)
            return entry


class ServeProcess:
    """`ivuscal serve` in a child process on two free loopback ports; stopped with SIGTERM."""

    def __init__(self, backend: str, weights: Path, workdir: Path, max_batch: int = 8, threads: int | None = None,
                 device: str | None = None) -> None:
        self.frames_address = f"tcp://127.0.0.1:{free_port()}"
        self.results_address = f"tcp://127.0.0.1:{free_port()}"
        self.log_path = workdir / "serve.log"
        command = [
            sys.executable, "-m", "engine.cli", "serve",
            "--frames", self.frames_address, "--results", self.results_address,
            "--journal-dir", str(workdir / "journal"), "--backend", backend, "--model", str(weights),
            "--max-batch", str(max_batch), "--heartbeat", "0.5",
        ] + (["--threads", str(threads)] if threads else []) + (["--device", device] if device else [])
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        cwd=Path(__file__).resolve().parents[1])

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        """Raise when the server has exited: InputError for bad usage (status 2), else InternalError."""
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
            message = f"ivuscal serve exited with status {self.process.returncode}: {' | '.join(tail)}"
            raise (InputError if self.process.returncode == 2 else InternalError)(message)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@dataclass
class RateRun:
    """One replay at one rate and what came back."""

    label: str
    sent: int
    send_s: float
    events: PullbackEvents
    usage: ResourceUsage

    skip: int = 0  # first results left out of the latency figures (process warm-up)

    def _measured(self) -> list[tuple[int, dict]]:
        results = self.events.results
        return results[self.skip :] if len(results) > self.skip else results

    def engine_latency_s(self, since: str = "received_ns", until: str = "published_ns") -> np.ndarray:
        """Seconds between two engine stamps of each measured result (engine.streaming.latency)."""
        return stage_ms([body for _, body in self._measured()], since, until) / 1e3

    def source_latency_s(self) -> np.ndarray:
        return np.array([recv * 1e-9 - b["t_acq"] for recv, b in self._measured()])

    def sustained_fps(self) -> float:
        """Results per second from the first frame sent to the last result received."""
        if not self.events.results:
            return 0.0
        first_sent = min(b["t_acq"] for _, b in self.events.results)
        last_received = max(recv for recv, _ in self.events.results) * 1e-9
        return rate(len(self.events.results), last_received - first_sent)


def replay_at(
    serve: ServeProcess, collector: Collector, path: Path, fps: float | None, n_frames: int, context: zmq.Context,
    skip: int = 0, label_suffix: str = "",
) -> RateRun:
    """Replay `path` at `fps` (None: max) and wait for the pullback's summary."""
    label = ("max" if fps is None else f"{fps:g} fps") + label_suffix
    pullback = f"bench-{uuid.uuid4().hex[:10]}"
    with ResourceMonitor(pid=serve.pid, interval_s=0.1) as monitor:
        t0 = time.perf_counter()
        sent = replay_file(path, serve.frames_address, fps, stream="bench", pullback=pullback, context=context)
        send_s = time.perf_counter() - t0
        events = collector.wait_summary(pullback, timeout_s=120 + 2 * n_frames / (fps or 30))
    return RateRun(label, sent, send_s, events, monitor.usage, skip)


def run(
    path: Path,
    weights: Path,
    backend: str,
    model_description: str,
    rates: tuple[float | None, ...] = RATES,
    max_batch: int = 8,
    threads: int | None = None,
    warmup_frames: int = 10,
    startup_timeout_s: float = 300.0,
    hog_rates: tuple[float, ...] = (),
    device: str | None = None,
) -> ScenarioResult:
    """Start the engine, replay `path` once per rate, and summarise each run.

    The first `warmup_frames` results of the first run (the engine process's first inferences)
    are left out of its latency figures; every other run counts every result.
    """
    from engine.dicom import open_pullback

    with open_pullback(path) as pull:
        n_frames, image = pull.info.n_frames, f"{pull.info.rows}x{pull.info.cols}"
    context = zmq.Context()
    collector = Collector()
    stop = threading.Event()
    runs: list[RateRun] = []
    with tempfile.TemporaryDirectory(prefix="ivuscal-bench-serve-") as workdir:
        serve = ServeProcess(backend, weights, Path(workdir), max_batch, threads, device)
        listener = threading.Thread(target=subscribe, args=(serve.results_address, collector, stop),
                                    kwargs={"context": context}, daemon=True)
        listener.start()
        try:
            deadline = time.monotonic() + startup_timeout_s
            while not collector.heartbeat.wait(0.5):
                serve.check_alive()
                if time.monotonic() > deadline:
                    raise InternalError(f"ivuscal serve sent no heartbeat within {startup_timeout_s:.0f} s")
            for i, fps in enumerate(rates):
                runs.append(replay_at(serve, collector, path, fps, n_frames, context, warmup_frames if i == 0 else 0))
            for fps in hog_rates:
                with cpu_hog(core=0):
                    runs.append(replay_at(serve, collector, path, fps, n_frames, context, label_suffix=" + CPU hog"))
        finally:
            serve.stop()
            stop.set()
            listener.join(timeout=5)
            context.term()
    result = ScenarioResult(
        NAME,
        TITLE,
        settings={
            "frames_per_run": n_frames, "image": image, "backend": backend, "threads": threads or "serve default",
            "max_batch": max_batch, "model": model_description,
        },
    )
    for r in runs:
        engine, source = latency_summary(r.engine_latency_s()), latency_summary(r.source_latency_s())
        queueing = latency_summary(r.engine_latency_s("received_ns", "started_ns"))
        compute = latency_summary(r.engine_latency_s("started_ns", "inferred_ns"))
        answered = len(r.events.results)
        lost = r.sent - answered - r.events.drops
        result.rows.append(
            {
                "rate": r.label,
                "sent": r.sent,
                "results": answered,
                "dropped": r.events.drops + max(lost, 0),
                "engine p50 ms": engine["p50"],
                "engine p99 ms": engine["p99"],
                "engine p99.9 ms": engine["p99_9"],
                "engine max ms": engine["max"],
                "queueing p50 ms": queueing["p50"],
                "compute p50 ms": compute["p50"],
                "source-to-result p50 ms": source["p50"],
                "source-to-result p90 ms": source["p90"],
                "source-to-result p99 ms": source["p99"],
                "source-to-result max ms": source["max"],
                "sustained frames/s": r.sustained_fps(),
                "server CPU %": r.usage.cpu_percent,
                "server peak RSS MiB": r.usage.peak_rss_mib,
            }
        )
        result.summary[r.label] = {
            "sent": r.sent,
            "send_s": r.send_s,
            "results": answered,
            "drop_notices": r.events.drops,
            "unanswered": max(lost, 0),
            "gap_filled_frames": r.events.gaps,
            "latency_warmup_results_skipped": r.skip,
            "engine_latency_ms": engine,
            "queueing_ms": queueing,
            "compute_ms": compute,
            "source_to_result_latency_ms": source,
            "sustained_frames_per_s": r.sustained_fps(),
            "server": r.usage.to_dict(),
        }
        result.latencies_s[f"source-to-result, {r.label}"] = r.source_latency_s()
    result.notes += [
        (
            "Engine latency: the engine's published_ns - received_ns of each result (queueing, micro-batching, "
            "inference, filter, quantify). Source-to-result adds the sender's encode and send, ZeroMQ transport both "
            "ways and the subscriber's decode; sender, engine and subscriber share the machine's cores."
        ),
        (
            "Queueing: received -> the worker took the batch; compute: polar, ensemble, filter, arcs of the batch "
            f"(engine.streaming.latency, shared with bench/stream_latency.py). The first {warmup_frames} results of "
            "the first run (the process's first inferences) are left out of the figures."
        ),
        (
            "'+ CPU hog': the same rate with a busy-looping process pinned to core 0 beside the engine "
            "(started before the run, killed after it)."
        ),
        (
            "Dropped: the engine's drop notices (queue full) plus frames sent but never answered. "
            "Sustained frames/s: results over the time from the first frame sent to the last result received."
        ),
    ]
    return result
