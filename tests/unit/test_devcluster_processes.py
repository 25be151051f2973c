"""aigis.devcluster.processes.is_running: alive, ours, and not fooled by pid reuse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aigis.devcluster.processes import is_running

pytestmark = pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs procfs")


def test_a_running_process_of_the_executable_is_running() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert is_running(child.pid, Path(sys.executable))
        assert not is_running(child.pid, Path("/usr/bin/some-other-component"))
    finally:
        child.kill()
        child.wait()
    assert not is_running(child.pid, Path(sys.executable))


def test_an_executable_further_along_argv_counts_only_when_asked() -> None:
    """nsenter (or any wrapper) names the component after its own options."""
    child = subprocess.Popen(
        ["/bin/sh", "-c", 'sleep 30; : "$0"', "--flag", "/opt/component"],
    )
    try:
        assert is_running(child.pid, Path("/bin/sh"))
        assert not is_running(child.pid, Path("/opt/component"))
        assert is_running(child.pid, Path("/opt/component"), anywhere=True)
    finally:
        child.kill()
        child.wait()
