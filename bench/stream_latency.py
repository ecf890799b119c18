"""Engine-added latency of the live engine at a given frame rate (docs/streaming.md).

A simulated pullback (cached DICOM, as the demo uses) is replayed at `fps` through an in-process
engine over loopback ZeroMQ; the latency of each frame is `published - received` from the
engine's own timestamps. `measure_stream_latency` is the reusable function; run this module for a
one-off measurement:

    python -m bench.stream_latency --frames 300 --fps 30 [--model W.safetensors] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from engine.cache_paths import cache_subdir
from engine.json_output import dumps, write_json
from engine.streaming.latency import engine_latency_ms, stage_ms, summarize_ms
from engine.streaming.loopback import LoopbackEngine
from engine.streaming.server import ServerConfig, create_server
from tools.demo import demo_pullback
from tools.replay import replay_file


def measure_stream_latency(
    model: str | Path | None = None,
    backend: str = "auto",
    threads: int = 1,
    n_frames: int = 300,
    fps: float | None = 30.0,
    image_size: int = 512,
    seed: int = 7,
    max_batch: int = 8,
    warmup_frames: int = 30,
) -> dict[str, Any]:
    """Replay a simulated pullback at `fps` (None: as fast as possible) and summarise the latency.

    The first `warmup_frames` results (first-call allocations, caches) are left out of the figures.
    """
    pullback = demo_pullback(n_frames, seed, image_size, cache_subdir("demo"), quiet=True)
    config = ServerConfig("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", journal_dir=None, max_batch=max_batch,
                          heartbeat_s=0.5)
    server = create_server(config, backend=backend, model=model, threads=threads)
    started = time.monotonic()
    with LoopbackEngine(server) as engine:
        replay_file(pullback, engine.frames_endpoint, fps, "bench", "latency", context=server.context)
        events = engine.wait_for_summaries(1, timeout_s=max(300.0, 4 * n_frames / (fps or 30.0)))
    wall_s = time.monotonic() - started
    results = [e for e in events if e["kind"] == "result"]
    measured = [e for e in events if e["kind"] != "result"] + [e for e in results if e["frame"] >= warmup_frames]
    return {
        "fps": fps,
        "frames": n_frames,
        "image_size": image_size,
        "backend": server.status["backend"],
        "model": server.status["model"],
        "threads": threads,
        "max_batch": max_batch,
        "results": len(results),
        "dropped": sum(e["kind"] == "drop" for e in events),
        "warmup_frames": warmup_frames,
        "engine_latency": summarize_ms(engine_latency_ms(measured)),
        "queueing": summarize_ms(stage_ms(measured, "received_ns", "started_ns")),
        "compute": summarize_ms(stage_ms(measured, "started_ns", "inferred_ns")),
        "encode_publish": summarize_ms(stage_ms(measured, "inferred_ns", "published_ns")),
        "wall_s": round(wall_s, 3),
        "load_average": os.getloadavg(),
        "cpu_count": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--fps", default="30", help="frames per second or 'max'")
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    fps = None if args.fps == "max" else float(args.fps)
    result = measure_stream_latency(
        args.model, args.backend, args.threads, args.frames, fps, args.image_size, max_batch=args.max_batch
    )
    print(dumps(result), end="")
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
