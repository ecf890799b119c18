"""Memory of the live engine against the number of streams: per open pullback, and as stream ids come and go.

A real engine (`StreamingServer` over loopback ZeroMQ, in this process) receives, per stream id,
a `start`, `frames_per_stream` Cartesian frames and an `end`, in waves of `wave` ids open at
once (the engine's `--max-streams`). Resident memory (RSS) is read after the model's warm-up
(baseline, after one wave as warm-up), with one wave of pullbacks open (memory per open pullback), and after 1,000 and
10,000 distinct stream ids have been opened and ended (the engine must forget them: RSS returns
towards the baseline). The heartbeat's stream list must be empty at the end. Then one stream
sends frame 0 and frames far ahead (`JUMPS`): each must be refused at once, with no memory
growth (the engine once filled every missing frame: ~18 s and ~630 MB for a jump to 20,000).
"""

from __future__ import annotations

import gc
import time
import tracemalloc

import numpy as np
import psutil

from bench.result import ScenarioResult
from engine.pipeline import CalciumPipeline, PipelineSettings
from engine.progress import progress
from engine.runtimes import EnsembleRuntime
from engine.streaming import protocol as p
from engine.streaming.loopback import LoopbackEngine
from engine.streaming.server import ServerConfig, StreamingServer

NAME = "streams"
TITLE = "Live engine memory: per open pullback, and over 1,000 and 10,000 stream ids"
MIB = 1024 * 1024
JUMPS = (20_000, 20_000_000)


def rss_mib() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / MIB


def run(
    runtime: EnsembleRuntime,
    model_description: str,
    ids: tuple[int, ...] = (1000, 10_000),
    wave: int = 32,
    frames_per_stream: int = 1,
    image_size: int = 512,
    quiet: bool = True,
) -> ScenarioResult:
    """Open and end `max(ids)` stream ids, `wave` at a time; RSS at each mark in `ids`."""
    spacing = runtime.spec.max_radius_mm / (image_size / 2)
    calib = p.Calibration((spacing, spacing), ((image_size - 1) / 2, (image_size - 1) / 2), 1 / 30, 0.5)
    frame = np.random.default_rng(0).integers(0, 256, size=(image_size, image_size), dtype=np.uint8)
    settings = PipelineSettings()
    config = ServerConfig(
        "tcp://127.0.0.1:*",
        "tcp://127.0.0.1:*",
        journal_dir=None,
        heartbeat_s=0.5,
        max_streams=wave,
        queue_size=max(256, wave * frames_per_stream),
        send_rows=False,
    )
    server = StreamingServer(
        config, lambda: CalciumPipeline(runtime, settings), {"backend": runtime.name, "model": model_description}
    )
    marks: dict[int, float] = {}
    with LoopbackEngine(server) as engine, progress("stream ids", max(ids), quiet) as bar:
        sender = engine.sender()
        done = 0

        def cycle(names: list[str], end: bool = True) -> None:
            for name in names:
                sender.send_multipart(
                    p.encode_start(p.PullbackStart(name, "pb", "cartesian", frame.shape, "uint8", calib))
                )
                for i in range(frames_per_stream):
                    sender.send_multipart(p.encode_frame(name, "pb", i, i, 0.0, "cartesian", calib, frame), copy=False)
            want = len(names) * frames_per_stream
            engine.wait_for(lambda ev: sum(e["kind"] == "result" for e in ev) >= want, timeout_s=600)
            if end:
                close(names)

        def close(names: list[str]) -> None:
            for name in names:
                sender.send_multipart(p.encode_end(p.PullbackEnd(name, "pb")))
            engine.wait_for(lambda ev: sum(e["kind"] == "summary" for e in ev) >= len(names), timeout_s=600)
            engine.drain()

        cycle(
            [f"warm-up-{k}" for k in range(wave)]
        )  # the runtime's arenas for every batch size, first-call allocations
        baseline = rss_mib()
        opened = [f"open-{k}" for k in range(wave)]
        tracemalloc.start()  # NumPy's and Python's allocations: exact where RSS reuses freed pages
        traced_before = tracemalloc.get_traced_memory()[0]
        cycle(opened, end=False)
        traced_open = tracemalloc.get_traced_memory()[0] - traced_before
        tracemalloc.stop()
        open_rss = rss_mib()
        close(opened)
        after_wave = rss_mib()
        t0 = time.perf_counter()
        for mark in sorted(ids):
            while done < mark:
                names = [f"id-{k}" for k in range(done, min(mark, done + wave))]
                cycle(names)
                done += len(names)
                bar.advance(len(names))
            marks[mark] = rss_mib()
        wall = time.perf_counter() - t0
        time.sleep(2 * config.heartbeat_s)
        heartbeat = [e for e in engine.drain() if e["kind"] == "heartbeat"][-1]
        jumps = _jumps(engine, sender, frame, calib)
    per_pullback = (open_rss - baseline) / wave
    traced_per_pullback = traced_open / wave / MIB
    result = ScenarioResult(
        NAME,
        TITLE,
        settings={
            "wave (max open streams)": wave,
            "frames_per_stream": frames_per_stream,
            "image_size": image_size,
            "backend": runtime.name,
            "model": model_description,
            "journal": "off",
        },
    )
    result.summary = {
        "baseline_rss_mib": baseline,
        "rss_with_wave_open_mib": open_rss,
        "memory_per_open_pullback_mib": per_pullback,
        "traced_memory_per_open_pullback_mib": traced_per_pullback,
        "rss_after_wave_ended_mib": after_wave,
        **{f"rss_after_{mark}_ids_mib": rss for mark, rss in marks.items()},
        **{f"growth_after_{mark}_ids_mib": rss - baseline for mark, rss in marks.items()},
        "open_streams_in_last_heartbeat": len(heartbeat["streams"]),
        "ids_per_s": done / wall if wall > 0 else None,
    }
    result.rows.append({"stage": f"baseline (after a warm-up wave of {wave})", "RSS MiB": baseline, "growth MiB": 0.0})
    result.rows.append({"stage": f"{wave} pullbacks open", "RSS MiB": open_rss, "growth MiB": open_rss - baseline})
    result.rows.append({"stage": f"those {wave} ended", "RSS MiB": after_wave, "growth MiB": after_wave - baseline})
    for mark, rss in marks.items():
        result.rows.append(
            {"stage": f"{mark} further stream ids opened and ended", "RSS MiB": rss, "growth MiB": rss - baseline}
        )
    for jump in jumps:
        result.rows.append(
            {
                "stage": f"jump to frame {jump['frame']:,} refused in {jump['ms']:.1f} ms",
                "RSS MiB": jump["rss_mib"],
                "growth MiB": jump["rss_mib"] - baseline,
            }
        )
    result.summary["jumps"] = jumps
    result.notes.append(
        f"Memory per open pullback: (RSS with {wave} pullbacks open, each after {frames_per_stream} frame(s) of "
        f"{image_size} x {image_size}) - baseline, / {wave}: {per_pullback:.2f} MiB by RSS, "
        f"{traced_per_pullback:.2f} MiB by tracemalloc (NumPy and Python allocations made while the wave opened). "
        "RSS read after gc.collect(); "
        "glibc may keep freed pages, so 'returning to baseline' is judged by the growth after many ids."
    )
    return result


def _jumps(engine: LoopbackEngine, sender, frame: np.ndarray, calib: p.Calibration) -> list[dict]:
    """Frame 0, then each of `JUMPS`: time from sending to the `error` event, RSS after."""
    sender.send_multipart(p.encode_frame("jumper", "pb", 0, 0, 0.0, "cartesian", calib, frame), copy=False)
    engine.wait_for(lambda ev: any(e["kind"] == "result" for e in ev), timeout_s=600)
    out = []
    for seq, index in enumerate(JUMPS, start=1):
        engine.drain()
        t0 = time.perf_counter()
        sender.send_multipart(p.encode_frame("jumper", "pb", seq, index, 0.0, "cartesian", calib, frame), copy=False)
        (error,) = [
            e
            for e in engine.wait_for(lambda ev: any(e["kind"] == "error" for e in ev), timeout_s=600)
            if e["kind"] == "error"
        ]
        out.append(
            {"frame": index, "ms": (time.perf_counter() - t0) * 1000, "code": error["code"], "rss_mib": rss_mib()}
        )
    sender.send_multipart(p.encode_end(p.PullbackEnd("jumper", "pb")))
    engine.wait_for(lambda ev: any(e["kind"] == "summary" for e in ev), timeout_s=600)
    return out
