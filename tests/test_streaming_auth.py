"""CURVE authentication and stream ownership of the live engine, over real ZeroMQ sockets."""

from __future__ import annotations

import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from test_streaming_fixtures import CALIB, SETTINGS, make_ensemble, make_frames, start

from engine.errors import InputError
from engine.streaming import protocol as p
from engine.streaming.auth import ClientKeys, CurveServer, check_exposure, create_keys
from engine.streaming.loopback import LoopbackEngine
from engine.streaming.server import ServerConfig, create_server
from engine.streaming.subscriber import subscribe

FRAMES = make_frames(10, seed=3)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ClientKeys]:
    """server, alice and bob (allowed), mallory (a valid key pair the engine does not know)."""
    base = tmp_path_factory.mktemp("keys")
    create_keys(base / "engine", "server")
    for name in ("alice", "bob"):
        create_keys(base / "allowed", name)
    create_keys(base / "strangers", "mallory")
    server_public = base / "engine" / "server.key"
    return {
        "dir": base,  # type: ignore[dict-item]
        "alice": ClientKeys(server_public, base / "allowed" / "alice.key_secret"),
        "bob": ClientKeys(server_public, base / "allowed" / "bob.key_secret"),
        "mallory": ClientKeys(server_public, base / "strangers" / "mallory.key_secret"),
    }


@pytest.fixture
def engine(keys: dict, tmp_path: Path) -> Iterator[LoopbackEngine]:
    """An engine with --auth (alice and bob allowed); its built-in subscriber and senders use alice's key."""
    model = make_ensemble(tmp_path / "ensemble.safetensors", FRAMES)
    base = keys["dir"]
    config = ServerConfig(
        "tcp://127.0.0.1:*",
        "tcp://127.0.0.1:*",
        journal_dir=None,
        heartbeat_s=0.1,
        auth_dir=base / "allowed",
        server_key=base / "engine" / "server.key_secret",
    )
    server = create_server(config, backend="torch", model=model, settings=SETTINGS, threads=1)
    with LoopbackEngine(server, keys=keys["alice"]) as running:
        yield running


def socket_with(engine: LoopbackEngine, kind: int, keys: ClientKeys | None, endpoint: str) -> zmq.Socket:
    socket = engine.server.context.socket(kind)
    socket.setsockopt(zmq.LINGER, 0)
    if keys is not None:
        keys.apply(socket)
    if kind == zmq.SUB:
        socket.setsockopt(zmq.SUBSCRIBE, b"")
    socket.connect(endpoint)
    engine._sockets.append(socket)  # closed with the engine
    return socket


def of(events: list[dict], stream: str, kind: str | None = None) -> list[dict]:
    return [e for e in events if e.get("stream") == stream and (kind is None or e["kind"] == kind)]


def test_an_unknown_key_receives_nothing_and_injects_nothing(engine: LoopbackEngine, keys: dict) -> None:
    spies = [
        socket_with(engine, zmq.SUB, keys["mallory"], engine.results_endpoint),
        socket_with(engine, zmq.SUB, None, engine.results_endpoint),
    ]  # and a client without CURVE at all
    for keys_or_none in (keys["mallory"], None):
        intruder = socket_with(engine, zmq.PUSH, keys_or_none, engine.frames_endpoint)
        intruder.send_multipart(p.encode_start(start("intruder", "x")), flags=zmq.NOBLOCK)
    alice = engine.sender()
    alice.send_multipart(p.encode_start(start("A", "pa", n_frames=3)))
    for i in range(3):
        alice.send_multipart(p.encode_frame("A", "pa", i, i, 0.0, "cartesian", CALIB, FRAMES[i]), copy=False)
    alice.send_multipart(p.encode_end(p.PullbackEnd("A", "pa", 3)))
    events = engine.wait_for_summaries(1, timeout_s=60)
    time.sleep(1.0)  # heartbeats keep flowing to alice meanwhile
    assert len([e for e in engine.events if e["kind"] == "heartbeat"]) > len(
        [e for e in events if e["kind"] == "heartbeat"]
    )
    for spy in spies:
        assert spy.poll(100) == 0, "a client without an allowed key received an event"
    assert not of(engine.events, "intruder")
    assert all(e["kind"] != "error" for e in engine.events)
    assert of(events, "A", "summary")[0]["complete"]


def test_a_known_key_cannot_touch_another_keys_stream(engine: LoopbackEngine, keys: dict) -> None:
    alice = engine.sender()
    bob = socket_with(engine, zmq.PUSH, keys["bob"], engine.frames_endpoint)
    alice.send_multipart(p.encode_start(start("A", "pa", n_frames=10)))
    for i in range(5):
        alice.send_multipart(p.encode_frame("A", "pa", i, i, 0.0, "cartesian", CALIB, FRAMES[i]), copy=False)
    engine.wait_for(lambda ev: len(of(ev, "A", "result")) == 5, timeout_s=60)
    bob.send_multipart(p.encode_frame("A", "pa", 5, 5, 0.0, "cartesian", CALIB, FRAMES[9]), copy=False)  # inject
    bob.send_multipart(p.encode_end(p.PullbackEnd("A", "pa", 5)))  # end it
    bob.send_multipart(p.encode_start(start("A", "hijack")))  # supersede it
    bob.send_multipart(p.encode_frame("A", "hijack", 0, 0, 0.0, "cartesian", CALIB, FRAMES[0]), copy=False)
    engine.wait_for(lambda ev: len(of(ev, "A", "error")) == 4, timeout_s=60)
    for i in range(5, 10):
        alice.send_multipart(p.encode_frame("A", "pa", i, i, 0.0, "cartesian", CALIB, FRAMES[i]), copy=False)
    alice.send_multipart(p.encode_end(p.PullbackEnd("A", "pa", 10)))
    bob.send_multipart(p.encode_start(start("B", "pb")))  # bob's own stream is his
    bob.send_multipart(p.encode_end(p.PullbackEnd("B", "pb")))
    events = engine.wait_for_summaries(2, timeout_s=60)
    assert [e["code"] for e in of(events, "A", "error")] == ["not_owner"] * 4
    assert [(e["pullback"], e["frame"]) for e in of(events, "A", "result")] == [("pa", i) for i in range(10)]
    assert [e["pullback"] for e in of(events, "A", "started")] == ["pa"]
    summary = of(events, "A", "summary")[0]
    assert (summary["pullback"], summary["n_frames"], summary["received"], summary["complete"]) == ("pa", 10, 10, True)
    assert of(events, "B", "summary")[0]["complete"]
    # Once alice's pullback has ended the stream is free: bob may open it.
    bob.send_multipart(p.encode_start(start("A", "bobs")))
    bob.send_multipart(p.encode_end(p.PullbackEnd("A", "bobs")))
    assert of(engine.wait_for_summaries(3, timeout_s=60), "A", "summary")[-1]["pullback"] == "bobs"


def test_the_authenticator_must_run_before_a_socket_is_made_a_curve_server(keys: dict) -> None:
    base = keys["dir"]
    context = zmq.Context()
    try:
        curve = CurveServer(context, base / "allowed", base / "engine" / "server.key_secret")
        socket = context.socket(zmq.PULL)
        with pytest.raises(RuntimeError, match="authenticator"):
            curve.apply(socket)
        socket.close()
    finally:
        context.term()


def test_without_auth_only_loopback_unless_insecure() -> None:
    for address in ("tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://[::1]:2", "ipc:///tmp/x", "inproc://x"):
        check_exposure([address], authenticated=False, insecure=False)
    for address in ("tcp://*:5555", "tcp://0.0.0.0:5555", "tcp://10.1.2.3:5555"):
        with pytest.raises(InputError, match="--auth"):
            check_exposure([address], authenticated=False, insecure=False)
        check_exposure([address], authenticated=False, insecure=True)
        check_exposure([address], authenticated=True, insecure=False)


def test_serve_refuses_a_wildcard_bind_without_auth(tmp_path: Path) -> None:
    from engine.cli import main

    assert (
        main(
            [
                "serve",
                "--frames",
                "tcp://0.0.0.0:0",
                "--no-journal",
                "--backend",
                "torch",
                "--model",
                str(make_ensemble(tmp_path / "m.safetensors", FRAMES)),
            ]
        )
        == 2
    )


def test_ipc_endpoints_are_owner_only(tmp_path: Path) -> None:
    model = make_ensemble(tmp_path / "ensemble.safetensors", FRAMES)
    config = ServerConfig(f"ipc://{tmp_path}/frames", f"ipc://{tmp_path}/results", heartbeat_s=0.1)
    with create_server(config, backend="torch", model=model, settings=SETTINGS, threads=1) as server:
        server.bind()
        for name in ("frames", "results"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_keys_command_writes_owner_only_secrets(tmp_path: Path) -> None:
    from engine.cli import main

    assert main(["keys", str(tmp_path / "k"), "--name", "console1"]) == 0
    assert stat.S_IMODE((tmp_path / "k" / "console1.key_secret").stat().st_mode) == 0o600
    assert main(["keys", str(tmp_path / "k"), "--name", "console1"]) == 2  # never overwrites a key


def test_subscriber_with_keys_hears_the_engine(engine: LoopbackEngine, keys: dict) -> None:
    stop, got = threading.Event(), []
    thread = threading.Thread(
        target=subscribe,
        args=(engine.results_endpoint, got.append, stop),
        kwargs={"context": engine.server.context, "keys": keys["bob"], "timeout_s": 30},
    )
    thread.start()
    try:
        for _ in range(100):
            if got:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert got and got[0]["kind"] == "heartbeat"
