"""The ``qrs`` command: serve, manage API keys, look at jobs and backends.

``qrs`` reads the same ``QRS_*`` variables as the server (``QRS_DATA_DIR`` above all),
and works on the store directly, so it needs no running server.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .config import Config

if TYPE_CHECKING:
    from .store import Store


def _store(config: Config) -> Store:
    """The server's store, opened on ``QRS_DATA_DIR`` (safe while a server runs on it)."""
    from .store import Store

    return Store(config.data_dir)


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    """Run gunicorn with gunicorn.conf.py settings (or the werkzeug dev server).

    Test state (scenario counters, the request journal) starts afresh with every
    ``qrs serve``; ``--scenario FILE`` puts a test scenario in force from the start.
    """
    import os

    from . import create_app
    from .testkit import state as testkit_state

    if args.scenario:
        from .testkit.scenario import ScenarioError, load_file

        try:
            load_file(args.scenario)
        except ScenarioError as exc:
            print(f"qrs: {exc}", file=sys.stderr)
            return 2
        path = os.path.abspath(args.scenario)
        config = config.replace(scenario=path)
        os.environ["QRS_SCENARIO"] = path  # for gunicorn's workers, which read the environment
    testkit_state.clear(config.data_dir)
    if args.dev:
        app = create_app(config)
        try:
            app.run(host=config.host, port=config.port, threaded=True)
        finally:
            app.extensions["qrs"].runner.stop()  # its job processes too
        return 0
    from gunicorn.app.wsgiapp import run

    sys.argv = ["gunicorn", "-c", args.gunicorn_config, "wsgi:app"]
    run()
    return 0


def cmd_worker(args: argparse.Namespace, config: Config) -> int:
    """Run jobs without serving HTTP (web workers then set ``QRS_START_RUNNER=0``)."""
    from .worker import run_worker

    return run_worker(config)


def cmd_keys(args: argparse.Namespace, config: Config) -> int:
    """``qrs keys create|list|revoke|hash``: a running server sees the change at once."""
    from .auth import hash_key, new_key

    if args.keys_command == "hash":  # no store needed: for QRS_API_KEYS_FILE lines
        key = args.key if args.key is not None else sys.stdin.readline().strip()
        if not key:
            print("No key given (argument or one line on standard input).", file=sys.stderr)
            return 1
        print(f"sha256:{hash_key(key)}")
        return 0
    store = _store(config)
    if args.keys_command == "create":
        key = new_key()
        key_id = store.add_api_key(args.user, hash_key(key), admin=args.admin)
        print(
            f"Created {'admin ' if args.admin else ''}key {key_id} for user {args.user}. "
            f"Keep it secret; it is shown only once:\n{key}"
        )
    elif args.keys_command == "list":
        for row in store.list_api_keys():
            state = "revoked" if row["revoked_at"] else "active"
            print(f"{row['id']}\t{row['user_id']}\t{'admin' if row['admin'] else 'user'}\t{state}")
    elif args.keys_command == "revoke":
        if not store.revoke_api_key(args.key_id):
            print(f"No active key with id or user {args.key_id!r}.", file=sys.stderr)
            return 1
        print(f"Revoked {args.key_id}.")
    return 0


def cmd_jobs(args: argparse.Namespace, config: Config) -> int:
    """``qrs jobs list|show|cancel``, straight on the store."""
    from .store import JobQuery

    store = _store(config)
    if args.jobs_command == "list":
        jobs, count = store.list_jobs(JobQuery(user_id=args.user, limit=args.limit))
        for job in jobs:
            print(f"{job.id}\t{job.status.value}\t{job.program_id}\t{job.backend}\t{job.user_id}")
        print(f"({len(jobs)} of {count})")
    elif args.jobs_command == "show":
        found = store.get_job(args.job_id)
        if found is None:
            print(f"No job {args.job_id}.", file=sys.stderr)
            return 1
        print(json.dumps(found.__dict__, default=str, indent=2))
        for _ts, line in store.job_logs(found.id):
            print(line)
    elif args.jobs_command == "cancel":
        if not store.cancel(args.job_id, "Cancelled by an operator."):
            print(f"Job {args.job_id} is not pending.", file=sys.stderr)
            return 1
        print(f"Cancelled {args.job_id}.")
    return 0


def cmd_backup(args: argparse.Namespace, config: Config) -> int:
    """``qrs backup PATH``: a consistent copy of the data directory, while the server runs."""
    from .store import backup_data_dir

    try:
        summary = backup_data_dir(config.data_dir, args.path)
    except (FileNotFoundError, FileExistsError) as exc:
        print(f"qrs backup: {exc}", file=sys.stderr)
        return 1
    print(
        f"Backed up {config.data_dir} to {summary.path}: database "
        f"{summary.database_bytes / 2**20:.1f} MiB, {summary.files} payload files. "
        f"Serve it with QRS_DATA_DIR={summary.path}."
    )
    return 0


def cmd_backends(args: argparse.Namespace, config: Config) -> int:
    """``qrs backends``: every served backend with its qubit count."""
    from .metadata import BackendMetadataProvider

    metadata = BackendMetadataProvider()
    for name in metadata.names():
        print(f"{name}\t{metadata.num_qubits(name)} qubits")
    return 0


def cmd_nginx_site(args: argparse.Namespace, config: Config) -> int:
    """``qrs nginx-site``: print the nginx site for these settings (QRS_PUBLIC_HOST, ...)."""
    from .nginx import SiteError, render_site

    overrides = dict(item.partition("=")[::2] for item in args.set)
    try:
        print(render_site(config, **overrides), end="")
    except (SiteError, OSError) as exc:
        print(f"qrs nginx-site: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_bench(args: argparse.Namespace, config: Config) -> int:
    """Run ``benchmarks/bench.py`` from the source tree (it starts its own servers)."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"
    if not script.exists():
        print(
            f"No benchmarks at {script}: 'qrs bench' runs from a source checkout of QRS.",
            file=sys.stderr,
        )
        return 1
    return subprocess.call([sys.executable, str(script), *args.extra])


def build_parser() -> argparse.ArgumentParser:
    """The ``qrs`` argument parser; each subcommand sets ``func`` to its ``cmd_*``."""
    parser = argparse.ArgumentParser(prog="qrs", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the server")
    serve.add_argument("--dev", action="store_true", help="werkzeug dev server, one process")
    serve.add_argument("--gunicorn-config", default="gunicorn.conf.py")
    serve.add_argument(
        "--scenario",
        metavar="FILE",
        help="a test scenario (JSON) in force from the start; see docs/testing.md",
    )
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run jobs without serving HTTP (production layout)")
    worker.set_defaults(func=cmd_worker)

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; prints it last")
    create.add_argument("--user", required=True)
    create.add_argument("--admin", action="store_true", help="may see every user's work")
    keys_sub.add_parser("list", help="list keys (never the keys themselves)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id, or all keys of a user")
    revoke.add_argument("key_id")
    hashed = keys_sub.add_parser(
        "hash",
        help="print sha256:<hex> of a key, for 'user:sha256:<hex>' lines in QRS_API_KEYS_FILE",
    )
    hashed.add_argument("key", nargs="?", help="the key (default: read one line from stdin)")
    keys.set_defaults(func=cmd_keys)

    jobs = sub.add_parser("jobs", help="inspect and cancel jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    listing = jobs_sub.add_parser("list")
    listing.add_argument("--user")
    listing.add_argument("--limit", type=int, default=20)
    show = jobs_sub.add_parser("show")
    show.add_argument("job_id")
    cancel = jobs_sub.add_parser("cancel")
    cancel.add_argument("job_id")
    jobs.set_defaults(func=cmd_jobs)

    backup = sub.add_parser(
        "backup",
        help="copy the data directory (safe while serving)",
        description="Copy QRS_DATA_DIR to the new directory PATH: the "
        "database with SQLite's online backup API, then the "
        "payload files. PATH works as a QRS_DATA_DIR.",
    )
    backup.add_argument("path")
    backup.set_defaults(func=cmd_backup)

    backends = sub.add_parser("backends", help="list served backends")
    backends.set_defaults(func=cmd_backends)

    site = sub.add_parser("nginx-site", help="print the nginx site for these settings")
    site.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a template field, e.g. QRS_TOKEN_RATE=30r/m",
    )
    site.set_defaults(func=cmd_nginx_site)

    bench = sub.add_parser(
        "bench",
        help="run the benchmarks and print their table",
        description="Arguments after 'bench' go to benchmarks/bench.py "
        "(--quick, --only heavy,tiny,client,cache,list).",
    )
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qrs`` command; returns the exit status."""
    from . import private_files
    from .compat import IncompatibleDependency
    from .errors import StartupError
    from .executors.base import ExecutorUnavailable
    from .store import SetupError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    args.extra = extra
    if args.extra and args.command != "bench":  # only 'bench' passes arguments through
        parser.error(f"unrecognized arguments: {' '.join(args.extra)}")
    private_files()  # what the CLI creates in the data directory is private too
    try:
        return args.func(args, Config.from_env())
    except (ExecutorUnavailable, SetupError, IncompatibleDependency, StartupError) as exc:
        # refused: say why, without a traceback
        print(f"qrs: cannot start: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
