"""The live web view of the streaming engine: a page, its WebSocket bridge and /metrics (docs/streaming.md)."""
