"""``aaltohub up``: start what is not configured externally, prepare it, run the services, stop in phases.

Order of start: lock the data dir, reap children an earlier killed ``up`` left behind, start
nats-server and Postgres (concurrently, each only if NATS_URL / DATABASE_URL is unset), ensure the
stream (its metadata holds the stack id), apply the migrations and record the stack's identity in
the database (docs/decisions/029), write the stack file, run every service in one TaskGroup. A server
or service that dies is restarted within its budget (``aaltohub.supervise``; restarts are logged
and counted in the stack file); past it, the stack stops. Order of stop (on ``stop`` being set):
cancel the services one at a time in ascending ``stop_order`` within the grace period, then stop
nats-server and Postgres, remove the stack file. The servers are stopped in ``finally``, so a
failed start or a crashed service leaves no child.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec
import psutil
import psycopg

from aaltohub.datalock import DataDirLock
from aaltohub.embedded.nats_cluster import NatsCluster
from aaltohub.embedded.nats_server import NatsServer
from aaltohub.embedded.pg_roles import (
    PgPasswords,
    ensure_roles,
    grant_service_roles,
    load_or_create_passwords,
)
from aaltohub.embedded.pg_roles import role_url as pg_role_url
from aaltohub.embedded.postgres import PostgresServer
from aaltohub.embedded.process import ServerStartError
from aaltohub.identity import ForeignStack, record_identity
from aaltohub.migrate import MigrationError, apply_migrations
from aaltohub.nats_auth import (
    NatsUsers,
    authorization_block,
    load_or_create_route_password,
    load_or_create_users,
    role_url,
)
from aaltohub.runtime import resolve_nats_url
from aaltohub.services import ServiceContext, ServiceSpec
from aaltohub.settings import Settings
from aaltohub.stack_file import StackInfo, connect_host, remove_stack, write_stack
from aaltohub.stream import stream_spec
from aaltohub.supervise import RestartBudget, RestartPolicy
from eventlog import EventLog, EventLogError, EventLogUnavailable, StreamConfigError
from eventlog.permissions import ROLES

log = logging.getLogger(__name__)

# Of the stop grace period (AALTOHUB_STOP_GRACE_S, like docker-compose's stop_grace_period), this
# much is kept for stopping the servers after the services: nats-server, then Postgres.
NATS_STOP_TIMEOUT_S: Final = 3.0
POSTGRES_STOP_TIMEOUT_S: Final = 5.0
SERVER_POLL_S: Final = 0.5  # how often `up` checks that its servers are alive
MIGRATE_TIMEOUT_S: Final = 120.0
SERVING_TIMEOUT_S: Final = 60.0  # how long "ready" waits for a service's probe (the API's HTTP)
STREAM_READY_TIMEOUT_S: Final = 60.0  # a fresh cluster elects its JetStream meta leader first


class StackError(RuntimeError):
    """The stack could not be started (a server, the migrations or the stream failed)."""


class _Children(msgspec.Struct, kw_only=True):
    nats_pid: int | None = None
    nats_node_pids: list[int] = msgspec.field(default_factory=list)  # --nats-cluster nodes
    postgres_pid: int | None = None


def redact_url(url: str) -> str:
    """``url`` without its password, for printing."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url


def _children_file(data_dir: Path) -> Path:
    return data_dir / "run" / "children.json"


def reap_orphans(data_dir: Path) -> list[int]:
    """Stop servers an earlier ``up`` of ``data_dir`` started and left behind (it was killed); returns pids."""
    path = _children_file(data_dir)
    try:
        children = msgspec.json.decode(path.read_bytes(), type=_Children)
    except (OSError, msgspec.DecodeError):
        return []
    reaped: list[int] = []
    servers = [
        (children.nats_pid, "nats-server"),
        *((pid, "nats-server") for pid in children.nats_node_pids),
        (children.postgres_pid, "postgres"),
    ]
    for pid, name in servers:
        if pid is None:
            continue
        try:
            proc = psutil.Process(pid)
            if proc.name() != name:
                continue  # the pid was reused by something else
            # nats-server stops on SIGTERM; for postgres SIGINT is the "fast" shutdown (SIGTERM waits for clients)
            proc.send_signal(signal.SIGTERM if name == "nats-server" else signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except psutil.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        except psutil.NoSuchProcess:
            continue
        log.warning("stopped %s (pid %d) left behind by an earlier `aaltohub up`", name, pid)
        reaped.append(pid)
    path.unlink(missing_ok=True)
    return reaped


class Stack:
    """One ``aaltohub up`` run over a data dir; ``run`` returns the process exit code."""

    def __init__(
        self,
        settings: Settings,
        *,
        services: Sequence[ServiceSpec],
        announce: Callable[[str], None] = print,
        stop_grace_s: float | None = None,
        restart_policy: RestartPolicy | None = None,
        nats_cluster: int = 1,
    ) -> None:
        if nats_cluster > 1 and settings.nats_url is None:
            # Every replica on its own node (docs/decisions/034-clustered-log.md).
            settings = settings.model_copy(update={"stream_replicas": min(3, nats_cluster)})
        self.settings = settings
        self.services = tuple(services)
        self.announce = announce
        self.data_dir = settings.data_path
        self.stop_grace_s = settings.stop_grace_s if stop_grace_s is None else stop_grace_s
        self.nats: NatsServer | None = None
        self.nats_cluster: NatsCluster | None = None
        self.nats_users: NatsUsers | None = None
        self.postgres: PostgresServer | None = None
        if settings.nats_url is None:
            # Every connection authenticates; each service gets its own user (eventlog.permissions).
            self.nats_users = load_or_create_users(self.data_dir)
            authorization = authorization_block(
                {role: self.nats_users.password(role) for role in ROLES},
                stream=settings.stream_name,
            )
            if nats_cluster > 1:
                self.nats_cluster = NatsCluster(
                    root=self.data_dir / "nats" / "cluster",
                    size=nats_cluster,
                    route_password=load_or_create_route_password(self.data_dir),
                    sync_interval=settings.nats_sync_interval,
                    authorization=authorization,
                )
            else:
                self.nats = NatsServer(
                    store_dir=self.data_dir / "nats" / "store",
                    port=settings.nats_port,
                    sync_interval=settings.nats_sync_interval,
                    authorization=authorization,
                )
        self.pg_passwords: PgPasswords | None = None
        if settings.database_url is None:
            # SCRAM for every connection; the services log in as their own non-superuser roles.
            self.pg_passwords = load_or_create_passwords(self.data_dir)
            self.postgres = PostgresServer(
                data_dir=self.data_dir / "postgres" / "data",
                tcp_port=settings.postgres_tcp_port,
                superuser_password=self.pg_passwords.superuser,
            )
        self.stopped_services: list[str] = []  # in the order they were stopped
        # Services that did not end within the grace period (e.g. stuck in a thread): left behind.
        self.abandoned_services: list[str] = []
        self.restart_policy = restart_policy or RestartPolicy()
        self.restarts: dict[str, int] = {}
        self._stack_info: StackInfo | None = None
        self._api_socket: socket.socket | None = None

    async def run(self, stop: asyncio.Event) -> int:
        """Start, run the services until ``stop`` is set or one ends, stop everything; 0 if all went well."""
        # Owner-only (the embedded Postgres's user may add o+x to traverse to its cluster).
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data_dir.chmod(0o700)
        lock = DataDirLock(self.data_dir)
        lock.acquire()
        try:
            await asyncio.to_thread(reap_orphans, self.data_dir)
            started = time.monotonic()
            context = await self._start()
            if stop.is_set():
                return 0
            services = asyncio.create_task(self._run_services(context, stop), name="services")
            try:
                late = await self._wait_until_serving(context, stop, services)
                if not services.done() and not stop.is_set():
                    self._announce_ready(context, time.monotonic() - started, late)
                return await services  # ends when `stop` is set or a service gives up
            finally:
                if not services.done():  # `up` itself was cancelled
                    services.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await services
        finally:
            if self._api_socket is not None:
                self._api_socket.close()
            self.stop_servers()
            lock.release()

    def stop_servers(self) -> None:
        """Stop nats-server and Postgres (blocking, bounded, idempotent) and remove the stack file."""
        remove_stack(self.data_dir)
        stops: list[tuple[NatsServer | PostgresServer | None, float]] = [
            *((node, NATS_STOP_TIMEOUT_S) for node in self.nats_nodes),
            (self.postgres, POSTGRES_STOP_TIMEOUT_S),
        ]
        for server, timeout_s in stops:
            if server is not None:
                try:
                    server.stop(timeout_s=timeout_s)
                except OSError as e:
                    log.error("could not stop %s: %s", type(server).__name__, e)
        _children_file(self.data_dir).unlink(missing_ok=True)

    async def _start(self) -> ServiceContext:
        starts = []
        if self.nats is not None:
            starts.append(asyncio.to_thread(self.nats.start))
        if self.nats_cluster is not None:
            starts.append(asyncio.to_thread(self.nats_cluster.start))
        if self.postgres is not None:
            starts.append(asyncio.to_thread(self.postgres.start))
        results = await asyncio.gather(*starts, return_exceptions=True)
        self._record_children()
        errors = [r for r in results if isinstance(r, BaseException)]
        for error in errors:
            if not isinstance(error, ServerStartError | OSError):
                raise error
        if errors:
            raise StackError("; ".join(str(e) for e in errors)) from errors[0]
        embedded_url = ",".join(node.url for node in self.nats_nodes) or None
        nats_url = embedded_url or self.settings.nats_url
        operator_url = (
            role_url(embedded_url, self.nats_users, "operator")
            if embedded_url is not None and self.nats_users is not None
            else resolve_nats_url(self.settings, role="operator")
        )
        database_url = (
            self.postgres.url
            if self.postgres is not None
            else self.settings.database_url.get_secret_value()  # type: ignore[union-attr]
        )
        assert nats_url is not None
        try:
            # The stream first: the stack id is born with it, and recorded in the database below.
            stack_id = await self._ensure_stream(operator_url)
        except EventLogError as e:
            raise StackError(f"stream {self.settings.stream_name}: {e}") from e
        try:
            if self.postgres is not None and self.pg_passwords is not None:
                await asyncio.to_thread(
                    ensure_roles,
                    self.postgres.admin_url,
                    self.postgres.url,
                    database=self.postgres.database,
                    passwords=self.pg_passwords,
                )
                database_url = pg_role_url(self.postgres.url, self.pg_passwords, "owner")
            await asyncio.wait_for(
                asyncio.to_thread(apply_migrations, database_url), timeout=MIGRATE_TIMEOUT_S
            )
            if self.pg_passwords is not None:
                await asyncio.to_thread(grant_service_roles, database_url)
            identity = await asyncio.to_thread(record_identity, database_url, stack_id)
        except ForeignStack as e:
            raise StackError(str(e)) from e
        except (MigrationError, OSError, TimeoutError) as e:
            raise StackError(f"migrations failed: {e}") from e
        except psycopg.Error as e:  # e.g. the server refused the connection
            raise StackError(f"migrations failed: {type(e).__name__}: {e}") from e
        self.settings.duckdb_file.parent.mkdir(parents=True, exist_ok=True)
        context = ServiceContext(
            settings=self.settings,
            nats_url=nats_url if embedded_url is not None else operator_url,
            nats_users=self.nats_users,
            database_url=database_url,
            database_passwords=self.pg_passwords,
            duckdb_path=self.settings.duckdb_file,
            demo=not self.settings.has_telegram_credentials,
            api_socket=self._reserve_api_socket(),
            identity=identity,
        )
        self._stack_info = StackInfo(
            pid=os.getpid(),
            nats_url=nats_url,
            database_url=database_url,
            duckdb_path=str(self.settings.duckdb_file),
            api_url=self._api_url(context),
            stack_id=identity.stack_id,
            postgres_system_id=identity.postgres_system_id,
            metrics_urls=self._metrics_urls(),
        )
        self._write_stack()
        return context

    @property
    def nats_nodes(self) -> list[NatsServer]:
        """The embedded nats-server, or the nodes of the embedded cluster (empty: NATS_URL)."""
        if self.nats_cluster is not None:
            return self.nats_cluster.nodes
        return [self.nats] if self.nats is not None else []

    async def _ensure_stream(self, operator_url: str) -> str:
        """Create or update the stream as the operator and return its stack id; a cluster that is
        still electing its JetStream leader gets ``STREAM_READY_TIMEOUT_S``."""
        deadline = time.monotonic() + STREAM_READY_TIMEOUT_S
        while True:
            try:
                event_log = await EventLog.connect(
                    operator_url, spec=stream_spec(self.settings), name="aaltohub-up"
                )
                try:
                    return await event_log.verify_stream()
                finally:
                    await event_log.close()
            except (EventLogUnavailable, StreamConfigError) as e:
                if self.nats_cluster is None or time.monotonic() > deadline:
                    raise
                log.info("stream not ready yet (%s); the cluster is electing its leaders", e)
                await asyncio.sleep(1.0)  # a JetStream meta leader election takes seconds

    def _write_stack(self) -> None:
        """(Re)write the stack file with the current server pids and restart counts."""
        if self._stack_info is None:
            return
        self._stack_info.nats_pid = self._pid(self.nats)
        self._stack_info.nats_nodes = {
            node.server_name or "": pid
            for node in self.nats_nodes
            if node.server_name is not None and (pid := self._pid(node)) is not None
        }
        self._stack_info.postgres_pid = self._pid(self.postgres)
        self._stack_info.restarts = dict(self.restarts)
        write_stack(self.data_dir, self._stack_info)

    def _record_children(self) -> None:
        children = _Children(
            nats_pid=self._pid(self.nats),
            nats_node_pids=[
                pid for node in self.nats_nodes if (pid := self._pid(node)) is not None
            ],
            postgres_pid=self._pid(self.postgres),
        )
        path = _children_file(self.data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(msgspec.json.encode(children))

    @staticmethod
    def _pid(server: NatsServer | PostgresServer | None) -> int | None:
        return server.process.pid if server is not None and server.process is not None else None

    def _reserve_api_socket(self) -> socket.socket | None:
        """A socket bound to the API port (or a free one when it is taken), held until ``up`` ends:
        a second stack starting at the same moment cannot take the same port."""
        if not any(s.name == "api" for s in self.services):
            return None
        host, port = self.settings.api_host, self.settings.api_port
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.bind((host, 0))
            log.warning(
                "API port %d on %s is taken; the API listens on %d",
                port,
                host,
                sock.getsockname()[1],
            )
        # Listening at once: Linux lets two SO_REUSEADDR sockets bind one port until one listens.
        sock.listen(128)
        self._api_socket = sock
        return sock

    def _metrics_urls(self) -> dict[str, str]:
        s = self.settings
        host = connect_host(s.metrics_host)
        ports = {"ingest": s.ingest_metrics_port, "projector": s.projector_metrics_port}
        return {
            spec.name: f"http://{host}:{ports[spec.name]}/metrics"
            for spec in self.services
            if ports.get(spec.name)
        }

    def _api_url(self, context: ServiceContext) -> str | None:
        if context.api_socket is None:
            return None
        return f"http://{self.settings.api_host}:{context.api_socket.getsockname()[1]}"

    async def _wait_until_serving(
        self, context: ServiceContext, stop: asyncio.Event, services: asyncio.Task[int]
    ) -> list[str]:
        """Wait until every service with a readiness probe serves (at most ``SERVING_TIMEOUT_S``,
        less if ``stop`` is set or the services end); the names of those not serving yet."""
        probes = {
            spec.name: asyncio.ensure_future(spec.ready(context))
            for spec in self.services
            if spec.ready is not None
        }
        if not probes:
            return []
        all_ready = asyncio.gather(*probes.values())
        stopped = asyncio.create_task(stop.wait())
        try:
            ends: set[asyncio.Future[Any]] = {all_ready, stopped, services}
            await asyncio.wait(
                ends,
                timeout=SERVING_TIMEOUT_S,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waiters: list[asyncio.Future[Any]] = [*probes.values(), all_ready, stopped]
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        return [
            name
            for name, probe in probes.items()
            if probe.cancelled() or probe.exception() is not None
        ]

    def _announce_ready(
        self, context: ServiceContext, elapsed_s: float, late: list[str] | None = None
    ) -> None:
        origin = {True: "embedded", False: "external"}
        lines = [f"aaltohub up: data dir {self.data_dir}"]
        lines.append(
            f"  nats      {redact_url(context.nats_url)} ({origin[bool(self.nats_nodes)]}"
            + (
                f", {len(self.nats_nodes)}-node cluster, stream replicas"
                f" {self.settings.stream_replicas}"
                if self.nats_cluster is not None
                else ""
            )
            + (f", sync_interval {self.nats_nodes[0].sync_interval})" if self.nats_nodes else ")")
        )
        lines.append(
            f"  postgres  {redact_url(context.database_url)} ({origin[self.postgres is not None]})"
        )
        lines.append(f"  duckdb    {context.duckdb_path}")
        for spec in self.services:
            where = spec.describe(context) if spec.describe is not None else "running"
            lines.append(f"  {spec.name:<9} {where}")
        if not self.services:
            lines.append("  (no services wired yet)")
        if context.demo and any(s.name == "ingest" for s in self.services):
            lines.append(
                "  no Telegram credentials (TELEGRAM_API_ID/TELEGRAM_API_HASH): ingest runs the demo source"
            )
        for name in late or ():
            lines.append(
                f"  {name:<9} not answering yet after {SERVING_TIMEOUT_S:.0f}s (see its log)"
            )
        lines.append(f"ready in {elapsed_s:.1f}s; Ctrl-C to stop")
        self.announce("\n".join(lines))

    async def _run_services(self, context: ServiceContext, stop: asyncio.Event) -> int:
        failures: list[str] = []
        # Not in the TaskGroup: a service that ignores its cancellation must not keep `up` from
        # ending; the shutdown gives each its share of the grace period and then leaves it.
        tasks = {
            spec.name: asyncio.create_task(
                self._supervise(spec, context, stop, failures), name=f"service:{spec.name}"
            )
            for spec in self.services
        }
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._watch_servers(stop, failures), name="watch-servers")
                group.create_task(
                    self._shutdown_when_stopped(stop, tasks, failures), name="shutdown"
                )
        finally:
            running = [
                task
                for name, task in tasks.items()
                if not task.done() and name not in self.abandoned_services
            ]
            for task in running:  # `up` itself was cancelled: stop them as a group would
                task.cancel()
            if running:
                await asyncio.wait(running, timeout=self.stop_grace_s)
        return 1 if failures else 0

    async def _supervise(
        self, spec: ServiceSpec, context: ServiceContext, stop: asyncio.Event, failures: list[str]
    ) -> None:
        """Run a service; restart it when it crashes or ends, within its restart budget."""
        budget = RestartBudget(self.restart_policy)
        while True:
            try:
                await spec.run(context)
            except asyncio.CancelledError:
                if not stop.is_set():
                    raise
                return  # cancelled by the phased shutdown: the normal end
            except Exception as e:  # a crashed service is restarted; it never kills `up` abruptly
                if stop.is_set():
                    # Stopping already (e.g. a connect to a stalled server timed out meanwhile):
                    # the service is down, which is what the stop asked for.
                    log.warning(
                        "service %s ended with %s while stopping: %s",
                        spec.name,
                        type(e).__name__,
                        e,
                    )
                    return
                log.error("service %s crashed: %s: %s", spec.name, type(e).__name__, e, exc_info=e)
            else:
                if stop.is_set():
                    return
                log.error("service %s ended on its own", spec.name)
            if not await self._restart_after_backoff(spec.name, budget, stop):
                if not stop.is_set():
                    failures.append(spec.name)
                    stop.set()
                return

    async def _restart_after_backoff(
        self, name: str, budget: RestartBudget, stop: asyncio.Event
    ) -> bool:
        """Wait the back-off before restart ``name``; False when the budget is spent or we stop."""
        delay_s = budget.next_delay_s()
        if delay_s is None:
            policy = self.restart_policy
            log.error(
                "%s died %d times within %.0fs; giving up and stopping the stack",
                name,
                policy.burst + 1,
                policy.interval_s,
            )
            return False
        self.restarts[name] = budget.count
        log.warning("restarting %s in %.1fs (restart %d)", name, delay_s, budget.count)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay_s)  # back-off, cut short by a stop
        if stop.is_set():
            return False
        self._write_stack()
        return True

    async def _watch_servers(self, stop: asyncio.Event, failures: list[str]) -> None:
        """Restart nats-server or Postgres when it dies, within its restart budget."""
        servers = [
            (n, s)
            for n, s in (
                ("nats-server", self.nats),
                *((f"nats-{node.server_name}", node) for node in self.nats_nodes if node.cluster),
                ("postgres", self.postgres),
            )
            if s
        ]
        budgets = {name: RestartBudget(self.restart_policy) for name, _ in servers}
        while not stop.is_set():
            for name, server in servers:
                process = server.process
                if process is None or process.poll() is None:
                    continue
                log.error("%s (pid %d) exited with code %s", name, process.pid, process.returncode)
                server.process = None
                while not stop.is_set():
                    if not await self._restart_after_backoff(name, budgets[name], stop):
                        if not stop.is_set():
                            failures.append(name)
                            stop.set()
                        return
                    try:
                        await asyncio.to_thread(server.start)
                    except (ServerStartError, OSError) as e:
                        log.error("%s did not start again: %s", name, e)
                        continue
                    log.warning("%s restarted (pid %s)", name, self._pid(server))
                    self._record_children()
                    self._write_stack()
                    break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=SERVER_POLL_S)  # liveness poll

    async def _shutdown_when_stopped(
        self, stop: asyncio.Event, tasks: dict[str, asyncio.Task[None]], failures: list[str]
    ) -> None:
        await stop.wait()
        self.announce("aaltohub up: stopping")
        # The services share the grace period minus what the servers need after them.
        deadline = (
            time.monotonic() + self.stop_grace_s - NATS_STOP_TIMEOUT_S - POSTGRES_STOP_TIMEOUT_S
        )
        for spec in sorted(self.services, key=lambda s: s.stop_order):
            task = tasks[spec.name]
            if not task.done():
                task.cancel()
                budget_s = max(1.0, deadline - time.monotonic())
                done, _ = await asyncio.wait({task}, timeout=budget_s)
                if not done:
                    log.error(
                        "service %s did not stop within %.1fs; left behind", spec.name, budget_s
                    )
                    failures.append(spec.name)
                    self.abandoned_services.append(spec.name)
                    continue
            self.stopped_services.append(spec.name)
            log.info("service %s stopped", spec.name)
