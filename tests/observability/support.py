"""Helpers of the observability tests: a real `python worker.py` with extra settings, and reading /metrics."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import settings_env

ROOT = Path(__file__).parent.parent.parent


def spawn_worker(stack, log: Path, **settings) -> subprocess.Popen:
    """The worker as production runs it (its own process, so its own metrics registry), with HERALD_<NAME>
    settings on top of the stack's; stdout and stderr go to `log`."""
    env = settings_env(stack.settings)
    env.update({f"HERALD_{name.upper()}": str(value) for name, value in settings.items()})
    return subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


def stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=5)


async def scrape(url: str, *, worker: subprocess.Popen | None = None, timeout: float = 30) -> str:
    """The text of a /metrics endpoint, waiting for it to come up (a worker process takes a moment)."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            try:
                r = await http.get(url)
                if r.status_code == 200:
                    return r.text
            except httpx.TransportError:
                pass
            assert worker is None or worker.poll() is None, f"the worker exited with {worker.returncode}"
            assert asyncio.get_running_loop().time() < deadline, f"{url} did not answer"
            await asyncio.sleep(0.2)


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when there is none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def names(text: str) -> set[str]:
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


async def wait_for_value(url: str, name: str, minimum: float, *, worker=None, timeout: float = 30,
                         **labels: str) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        text = await scrape(url, worker=worker)
        if value(text, name, **labels) >= minimum:
            return text
        assert asyncio.get_running_loop().time() < deadline, (
            f"{name}{labels} stayed below {minimum}: "
            + "\n".join(line for line in text.splitlines() if line.startswith(name)))
        await asyncio.sleep(0.2)
