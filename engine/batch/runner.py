"""Submit one task per input to a Dask client and gather the outcomes, with a progress bar.

A task whose worker dies is rerun by the scheduler on another worker (up to its allowed
failures); past that, or on any other loss, the input is recorded as failed and the batch goes on.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from distributed import Client, as_completed
from tqdm import tqdm

from engine.batch.cluster import task_resources
from engine.batch.layout import report_key
from engine.batch.task import BatchConfig, Outcome, Status, analyse_one


def run_batch(
    client: Client,
    sources: Sequence[Path],
    out_dir: Path,
    config: BatchConfig,
    *,
    gpu: bool = False,
    quiet: bool = False,
) -> list[Outcome]:
    """One `analyse_one` task per input; every input gets exactly one Outcome (in completion order).

    Failures are written to stderr as they come (one line each, naming the file), also when quiet;
    the progress bar (count, rate, time left) shows only on a terminal and when not quiet.
    """
    fingerprint = config.fingerprint()
    batch_id = uuid.uuid4().hex[:6]
    futures = {
        client.submit(
            analyse_one, str(source), str(out_dir), config, fingerprint,
            key=f"analyse-{report_key(source)}-{batch_id}", pure=False, resources=task_resources(gpu),
        ): str(source)
        for source in sources
    }
    outcomes: list[Outcome] = []
    counts = {status: 0 for status in Status}
    show = not quiet and sys.stderr.isatty()
    bar = tqdm(total=len(futures), unit="pullback", desc="batch", disable=not show, file=sys.stderr, smoothing=0.05)
    with bar:
        for future in as_completed(futures):
            source = futures[future]
            try:
                outcome = future.result()
            except Exception as error:  # the task never returned: worker lost too often, cluster gone
                reason = f"{source}: not analysed, task lost ({type(error).__name__}: {error})"
                outcome = Outcome(source, Status.FAILED, reason=reason, internal=True)
            future.release()
            outcomes.append(outcome)
            counts[outcome.status] += 1
            if outcome.status is Status.FAILED:
                tqdm.write(f"ivuscal: {outcome.reason}", file=sys.stderr)
            bar.set_postfix({str(s): n for s, n in counts.items()}, refresh=False)
            bar.update(1)
    return outcomes
