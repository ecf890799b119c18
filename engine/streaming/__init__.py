"""The live engine (docs/streaming.md, docs/protocol.md).

- `protocol`: message encoding, decoding and validation (pure).
- `session`: one stream's open pullback: frame admission, inference batches, fills (no sockets).
- `streams`: every open stream: routing in arrival order, ownership, limits, lifetime (no sockets).
- `inbound`: the bounded, arrival-ordered queue between the receiver and the worker.
- `stats`: the engine's counters, read as one snapshot.
- `server`: receiver thread, worker, PUB socket, shutdown; `create_server`.
- `auth`: CURVE keys and the loopback-only default.
- `journal`: per-pullback results on disk; `read_journal`, `prune_journals`.
- `subscriber`, `loopback`: reading the results; an engine and a subscriber in one process.
- `latency`: engine-added latency from result timestamps.
- `cli`: `ivuscal serve`, `ivuscal keys`.
"""
