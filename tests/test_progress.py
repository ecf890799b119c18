"""Progress bars: drawn on a terminal, silent when stderr is not one or when asked to be quiet."""

from __future__ import annotations

import pytest

from engine.progress import progress


def test_progress_is_silent_off_a_terminal_and_counts(capsys: pytest.CaptureFixture[str]) -> None:
    with progress("work", total=5) as bar:
        for _ in range(5):
            bar.advance()
    assert bar.done == 5 and not bar.enabled
    assert capsys.readouterr().err == ""


def test_progress_draws_on_a_terminal_unless_quiet(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    with progress("work", total=3) as bar:
        bar.advance(3)
    assert "work" in capsys.readouterr().err and bar.enabled
    with progress("quiet work", total=3, quiet=True) as bar:
        bar.advance(3)
    assert capsys.readouterr().err == "" and not bar.enabled
