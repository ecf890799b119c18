"""The live engine (docs/streaming.md, docs/protocol.md).

- `protocol`: message encoding, decoding and validation (pure).
- `session`: one stream's pullbacks through the shared `CalciumPipeline` (no sockets).
- `server`: receiver thread, bounded queue, micro-batching worker, PUB socket; `create_server`.
- `journal`: per-pullback results on disk; `read_journal`.
- `subscriber`, `loopback`: reading the results; an engine and a subscriber in one process.
- `latency`: engine-added latency from result timestamps.
- `cli`: `ivuscal serve`.
"""
