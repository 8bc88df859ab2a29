"""`python -m bench --profile DIR`: py-spy flame graphs of the processes under test while they are
measured, so that each figure comes with where its time went (profile, don't guess)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path


class Profiler:
    """Attaches py-spy to a running process for the length of a `with` block; does nothing when no
    directory was given."""

    def __init__(self, out_dir: Path | None) -> None:
        self.out_dir = out_dir
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)

    @asynccontextmanager
    async def attached(self, name: str, pid: int) -> AsyncIterator[None]:
        if self.out_dir is None:
            yield
            return
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        out = self.out_dir / f"{name}.svg"
        recorder = await asyncio.create_subprocess_exec(
            py_spy, "record", "--pid", str(pid), "--rate", "100", "--output", str(out),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            yield
        finally:
            recorder.send_signal(signal.SIGINT)  # py-spy writes its flame graph on Ctrl-C
            await recorder.wait()
            print(f"profile of {name}: {out}", file=sys.stderr)
