"""Starting, finding and stopping the detached component processes.

Components must outlive the ``up`` command (and a pytest session that ran it), so they are started
through ``/bin/sh`` in a new session: the shell puts the component in the background, prints its
pid and exits. The component is then re-parented to init, so the caller never holds a zombie or a
``Popen`` object that warns about a still-running child, and a Ctrl-C in the caller's terminal does
not reach it. A pid file per component lets any later command find it again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

# "$1" is the log file, the remaining arguments are the command. stdin is /dev/null so a component
# never blocks on the caller's terminal.
_LAUNCH_IN_BACKGROUND = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'

STOP_GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.05


def start_detached(
    argv: list[str],
    log_file: Path,
    pid_file: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> int:
    """Start ``argv`` in the background with output appended to ``log_file``; return its pid."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    launched = subprocess.run(
        ["/bin/sh", "-c", _LAUNCH_IN_BACKGROUND, "sh", str(log_file), *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
    )
    pid = int(launched.stdout.strip())
    pid_file.write_text(f"{pid}\n")
    return pid


def read_pid(pid_file: Path) -> int | None:
    """The pid recorded in ``pid_file``, or None if there is none."""
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


_EXEC_RETRIES = 50
_EXEC_RETRY_SECONDS = 0.01


def is_running(pid: int, executable: Path, *, anywhere: bool = False) -> bool:
    """Whether ``pid`` is alive and still runs ``executable`` (guards against pid reuse).

    The executable is looked for in argv[0] or argv[1] (a wrapper script run by its
    interpreter, "/bin/sh /path/to/etcd"), or anywhere in argv with ``anywhere`` (a command
    started through nsenter names it further along until nsenter has exec'd).
    """
    proc = Path("/proc") / str(pid)
    if not Path("/proc/self").exists():  # no procfs (macOS): fall back to a signal probe
        return _signal_probe(pid)
    try:
        # While a process execs (a fresh child, sh -> nsenter -> the component) its cmdline
        # reads as empty for a moment: taken at face value, a component that had just started
        # looked as if it had exited.
        for _ in range(_EXEC_RETRIES):
            cmdline = (proc / "cmdline").read_bytes()
            if cmdline:
                break
            time.sleep(_EXEC_RETRY_SECONDS)
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z":
        return False
    argv = cmdline.decode(errors="replace").split("\0")
    return str(executable) in (argv if anywhere else argv[:2])


def running_pid(pid_file: Path, executable: Path) -> int | None:
    """The pid from ``pid_file`` if that process is still our component, else None."""
    pid = read_pid(pid_file)
    if pid is not None and is_running(pid, executable):
        return pid
    return None


def stop_all(targets: list[tuple[int, Path]], grace_seconds: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM every (pid, executable) at once, then SIGKILL whatever is left after the grace."""
    alive = [(pid, exe) for pid, exe in targets if is_running(pid, exe)]
    for pid, _ in alive:
        _send(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while alive and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
        alive = [(pid, exe) for pid, exe in alive if is_running(pid, exe)]
    for pid, _ in alive:
        _send(pid, signal.SIGKILL)
    deadline = time.monotonic() + grace_seconds
    while alive and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
        alive = [(pid, exe) for pid, exe in alive if is_running(pid, exe)]


def _send(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _signal_probe(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        content = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"(no log file at {path})"
    return "\n".join(content[-lines:]) if content else f"({path} is empty)"
