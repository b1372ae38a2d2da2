#!/usr/bin/env python3
"""A throwaway PostgreSQL server for tests and CI, reachable only through a unix socket.

    python3 tests/services/postgres.py start DIR   start a server in DIR; prints its libpq URL as the
                                                   last line of stdout and writes it to DIR/url
    python3 tests/services/postgres.py stop DIR    stop it (immediately) and delete its data; a no-op
                                                   when nothing runs there

Layout of DIR: data/ (the cluster), socket/ (the unix socket, named after the port), server.log,
server.json (what `stop` needs) and url. The server is tuned for speed, not durability (fsync,
synchronous_commit and full_page_writes are off), trusts every local connection, and has a database
named `audiences` owned by the superuser `postgres`.

Run as root, the server runs as the `postgres` system user (created if missing), since initdb and
pg_ctl refuse root; DIR is handed to that user. The binaries are found with `pg_config --bindir`, else
in the newest /usr/lib/postgresql/*/bin; when neither has them and apt-get is available to root, the
Debian package `postgresql` is installed first.

Standard library only: CI runs this with the system python3, before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

DATABASE = "audiences"
SUPERUSER = "postgres"
SYSTEM_USER = "postgres"
SERVER_BINARIES = ("initdb", "pg_ctl", "postgres", "createdb")
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
# sizeof(sockaddr_un.sun_path) on Linux, terminating NUL included; PostgreSQL refuses longer paths.
SOCKET_PATH_MAX = 107

# Appended to postgresql.conf. A test server only: speed over durability, deterministic settings.
SETTINGS = {
    "listen_addresses": "''",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "jit": "off",
    "timezone": "'UTC'",
}


class ServiceError(RuntimeError):
    """The server could not be installed, started or stopped; the message says why."""


@dataclass(frozen=True)
class ServerInfo:
    base_dir: Path
    data_dir: Path
    socket_dir: Path
    port: int
    bindir: Path
    run_as: str | None  # the system user the server runs as; None: the current user
    url: str

    def save(self) -> None:
        fields = {key: str(value) if isinstance(value, Path) else value
                  for key, value in asdict(self).items()}
        (self.base_dir / "server.json").write_text(json.dumps(fields, indent=2) + "\n")

    @classmethod
    def load(cls, base_dir: str | os.PathLike[str]) -> ServerInfo | None:
        """What `start` recorded in base_dir, or None when no server was started there."""
        path = Path(base_dir).resolve() / "server.json"
        try:
            fields = json.loads(path.read_text())
            return cls(base_dir=Path(fields["base_dir"]), data_dir=Path(fields["data_dir"]),
                       socket_dir=Path(fields["socket_dir"]), port=int(fields["port"]),
                       bindir=Path(fields["bindir"]), run_as=fields["run_as"], url=fields["url"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise ServiceError(f"{path} is not a server record ({exc}); delete it to start afresh") from exc

    def postmaster_pid(self) -> int | None:
        """The pid of the running server, or None when it is not running."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by another user
        return pid


# --- finding or installing the binaries ----------------------------------------------------------------

def _has_server_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in SERVER_BINARIES)


def _version_key(bindir: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,); 9.6 -> (9, 6); anything unparsable sorts last.
    parts = re.findall(r"\d+", bindir.parent.name)
    return tuple(int(part) for part in parts) if parts else (-1,)


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl, postgres and createdb, or None."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30,
                                 check=True).stdout.strip()
            if out:
                candidates.append(Path(out))
    candidates += sorted((Path(p) for p in glob.glob(DEBIAN_BIN_GLOB)), key=_version_key, reverse=True)
    return next((bindir for bindir in candidates if _has_server_binaries(bindir)), None)


def _install_with_apt() -> str | None:
    """Install the Debian package `postgresql`; None on success, else why it could not be done."""
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "installing with apt-get needs root"
    print("PostgreSQL server binaries not found; installing the Debian package postgresql with apt-get ...",
          file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]  # parallel test workers may race for the dpkg lock
    for argv in ([apt_get, "-qq", *lock, "update"],
                 [apt_get, "-y", "-qq", *lock, "--no-install-recommends", "install", "postgresql"]):
        result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if result.returncode != 0:
            return f"`{' '.join(argv)}` failed with exit code {result.returncode}:\n{_tail(result)}"
    return None


def ensure_bindir() -> Path:
    bindir = find_bindir()
    if bindir is not None:
        return bindir
    why = _install_with_apt()
    bindir = find_bindir()
    if bindir is not None:
        return bindir
    raise ServiceError(
        f"PostgreSQL server binaries ({', '.join(SERVER_BINARIES)}) were found neither in "
        f"`pg_config --bindir` nor in {DEBIAN_BIN_GLOB}, and could not be installed: "
        f"{why or 'the package postgresql was installed but its binaries are not there'}. "
        "Install PostgreSQL (Debian: apt-get install postgresql) and try again.")


# --- running commands as the server's user ---------------------------------------------------------------

def ensure_system_user() -> str | None:
    """The user to run the server as: `postgres` when we are root (created if missing), else None."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        result = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                                 "--home-dir", "/var/lib/postgresql", "--shell", "/bin/sh", SYSTEM_USER],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise ServiceError(f"could not create the system user {SYSTEM_USER}: {_tail(result)}") from None
    return SYSTEM_USER


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    if user is None:
        return argv
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *argv]
    import shlex

    return ["su", user, "-s", "/bin/sh", "-c", shlex.join(argv)]


def _clean_env() -> dict[str, str]:
    # PGDATA, PGHOST, PGPORT and friends from the caller's environment must not steer these commands.
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


def _run(argv: list[str], *, user: str | None, cwd: Path, what: str) -> None:
    result = subprocess.run(_as_user(user, argv), cwd=cwd, env=_clean_env(), stdin=subprocess.DEVNULL,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise ServiceError(f"{what} failed (exit code {result.returncode}):\n{_tail(result)}")


def _tail(result: subprocess.CompletedProcess[str], lines: int = 20) -> str:
    text = "\n".join(part.strip() for part in (result.stdout, result.stderr) if part and part.strip())
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


def _check_reachable(path: Path, user: str) -> None:
    """Fail clearly when `user` cannot get to `path` (for example a 0700 directory of root's above it)."""
    import pwd

    entry = pwd.getpwnam(user)
    groups = set(os.getgrouplist(user, entry.pw_gid))
    for ancestor in path.parents:
        st = ancestor.stat()
        if st.st_uid == entry.pw_uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid in groups:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            raise ServiceError(f"the server runs as the {user} user, which cannot enter {ancestor} to reach "
                               f"{path}; use a directory it can reach, such as one made by `mktemp -d`")


# --- start and stop -------------------------------------------------------------------------------------

def _free_port() -> int:
    # The server listens on no TCP port; the number only names the socket file. A port that is free
    # on this machine keeps servers apart even if they were ever made to share a socket directory.
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    except OSError:
        import random

        return random.randint(20000, 60000)


def make_url(socket_dir: Path, port: int, database: str = DATABASE) -> str:
    return f"postgresql://{SUPERUSER}@/{database}?host={quote(str(socket_dir), safe='/')}&port={port}"


def _conf_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def start(base_dir: str | os.PathLike[str], *, database: str = DATABASE) -> ServerInfo:
    """Start a throwaway server in base_dir (created if needed) and return how to reach it.

    A server already running there is reused; leftovers of a stopped one are discarded.
    """
    began = time.monotonic()
    base = Path(base_dir).resolve()
    base.mkdir(parents=True, exist_ok=True)
    previous = ServerInfo.load(base)
    if previous is not None:
        if previous.postmaster_pid() is not None:
            print(f"PostgreSQL is already running in {base}", file=sys.stderr, flush=True)
            return previous
        stop(previous)

    bindir = ensure_bindir()
    user = ensure_system_user()
    data_dir, socket_dir = base / "data", base / "socket"
    for leftover in (data_dir, socket_dir):
        shutil.rmtree(leftover, ignore_errors=True)
    socket_dir.mkdir(mode=0o700)
    if user is not None:
        _check_reachable(base, user)
        for path in (base, socket_dir):
            shutil.chown(path, user=user, group=None)

    port = _free_port()
    socket_file = socket_dir / f".s.PGSQL.{port}"
    if len(os.fsencode(socket_file)) > SOCKET_PATH_MAX:
        raise ServiceError(f"the socket path {socket_file} is longer than {SOCKET_PATH_MAX} bytes, "
                           "the unix limit; use a shorter directory")
    if any(ch in str(socket_dir) for ch in ',"'):
        raise ServiceError(f"the socket directory {socket_dir} may not contain a comma or a double quote")
    info = ServerInfo(base_dir=base, data_dir=data_dir, socket_dir=socket_dir, port=port, bindir=bindir,
                      run_as=user, url=make_url(socket_dir, port, database))
    info.save()

    _run([str(bindir / "initdb"), "--pgdata", str(data_dir), "--auth=trust", "--locale=C",
          "--encoding=UTF8", "-U", SUPERUSER, "--no-sync", "--no-instructions"],
         user=user, cwd=base, what="initdb")
    settings = {**SETTINGS, "port": str(port),
                "unix_socket_directories": _conf_string(f'"{socket_dir}"')}
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write("\n# throwaway test server (tests/services/postgres.py)\n")
        conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
    try:
        _run([str(bindir / "pg_ctl"), "start", "--pgdata", str(data_dir), "--log", str(base / "server.log"),
              "--wait", "--timeout", "60", "--silent"],
             user=user, cwd=base, what=f"pg_ctl start (see {base / 'server.log'})")
        _run([str(bindir / "createdb"), "--host", str(socket_dir), "--port", str(port),
              "--username", SUPERUSER, database],
             user=None, cwd=base, what=f"createdb {database}")
    except BaseException:
        with contextlib.suppress(Exception):
            stop(info)
        raise
    (base / "url").write_text(info.url + "\n")
    print(f"PostgreSQL ({bindir}) started in {time.monotonic() - began:.2f} s; log: {base / 'server.log'}",
          file=sys.stderr, flush=True)
    return info


def stop(info: ServerInfo) -> None:
    """Stop the server immediately and delete its data and socket; harmless when it is not running."""
    pid = info.postmaster_pid()
    if pid is not None:
        with contextlib.suppress(ServiceError, OSError):
            _run([str(info.bindir / "pg_ctl"), "stop", "--pgdata", str(info.data_dir), "--mode", "immediate",
                  "--wait", "--silent"], user=info.run_as, cwd=info.base_dir, what="pg_ctl stop")
        if info.postmaster_pid() is not None:
            _kill(pid)
    for path in (info.data_dir, info.socket_dir):
        shutil.rmtree(path, ignore_errors=True)
    for name in ("url", "server.json"):
        (info.base_dir / name).unlink(missing_ok=True)


def _kill(pid: int, timeout: float = 10.0) -> None:
    # What `pg_ctl stop -m immediate` does: SIGQUIT to the postmaster, which takes its children along.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise ServiceError(f"the PostgreSQL server (pid {pid}) did not stop within {timeout:.0f} s")


def stop_dir(base_dir: str | os.PathLike[str]) -> bool:
    """Stop the server started in base_dir, if any; True when there was one."""
    info = ServerInfo.load(base_dir)
    if info is None:
        return False
    stop(info)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tests/services/postgres.py",
                                     description="A throwaway PostgreSQL server for tests and CI.")
    parser.add_argument("command", choices=["start", "stop"])
    parser.add_argument("dir", type=Path, help="the directory that holds the server")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            print(start(args.dir).url, flush=True)
        elif not stop_dir(args.dir):
            print(f"no server to stop in {args.dir}", file=sys.stderr)
    except ServiceError as exc:
        print(f"postgres.py {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
