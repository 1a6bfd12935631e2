#!/usr/bin/env python3
"""ML Metadata's gRPC API served by the in-process store of PyPI's `ml-metadata` wheel.

KFP's driver and launcher talk to `ml_metadata.MetadataStoreService` on port 8080. Upstream runs
Google's C++ `metadata_store_server` there; this serves the same service from the wheel's pybind
store, the same C++ `MetadataStore` the C++ server wraps. Every RPC passes its request bytes to the
store's method of the same name and returns the response bytes untouched (nothing is parsed in
Python), and a failed call returns the store's status code and message, as the C++ server does
(`ToGRPCStatus`): NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT, ... reach the client unchanged.

Three methods of the service are not in the wheel's pybind module: GetParentContextsByContexts
and GetChildrenContextsByContexts are answered from the per-context methods (one lock held, so
one consistent view), and GetLineageGraph answers UNIMPLEMENTED, as the C++ store of this
version does itself.

Storage: a SQLite file (`--sqlite_path`), or PostgreSQL with the C++ server's `--postgres_config_*`
flags. On PostgreSQL, MLMD's schema indexes property values, so a custom property whose stored
value passes PostgreSQL's B-tree limit (8191 bytes after compression, about 2.7 KB per row in
practice) fails with INTERNAL "index row size ... exceeds btree ... maximum" (a 10 KB struct
did; SQLite kept 6 MB). KFP's driver stores parameters and metrics as struct properties.

Runs in the image of scripts/kfp/mlmd-server.Dockerfile; imports only ml_metadata, grpc,
protobuf and the standard library.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures
from types import FrameType

import grpc
from google.protobuf import __version__ as protobuf_version
from ml_metadata import __version__ as mlmd_version
from ml_metadata.metadata_store.pywrap.metadata_store_extension import metadata_store as pywrap
from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2
from ml_metadata.proto import metadata_store_service_pb2 as service_pb2

SERVICE = service_pb2.DESCRIPTOR.services_by_name["MetadataStoreService"]
# What KFP's manifests pass the C++ server (--grpc_channel_arguments): KFP's Go client sends and
# accepts messages up to 100 MiB (backend/src/v2/metadata/client.go, MaxGRPCMessageSize), gRPC's
# default receive limit is 4 MiB.
DEFAULT_CHANNEL_ARGUMENTS = (
    "grpc.max_metadata_size=16384,"
    "grpc.max_receive_message_length=104857600,"
    "grpc.max_send_message_length=104857600"
)
STATUS_BY_CODE = {code.value[0]: code for code in grpc.StatusCode}
# Seconds a stopping server lets RPCs in flight finish (Kubernetes waits 30 s before SIGKILL).
STOP_GRACE_S = 10.0

log = logging.getLogger("mlmd-server")

Handler = Callable[[bytes], tuple[bytes, int, str]]


def one_line(message: str) -> str:
    """The store's messages span lines (protos in text format); a log line should not."""
    return " ".join(message.split())


class Store:
    """One pybind MetadataStore (one database connection), used by one RPC at a time.

    The C++ server opens a new store, and so a new connection, for every RPC; here one store
    stays open and a lock serializes the calls into it: a MetadataStore owns a single
    connection and transaction executor, which are not safe to use from several threads at
    once (a SQLite connection shared by two threads would interleave their transactions), and
    SQLite serializes writers anyway. Reads wait behind writes; for KFP's load (a few calls
    per task) that costs nothing measurable. Opening a PostgreSQL store per RPC, as the C++
    server does, took 52 ms here (its schema checks), reusing it 1 ms.

    A PostgreSQL store never reconnects by itself: once its connection is gone (the database
    restarted) every call fails with INTERNAL. So after an INTERNAL (or UNAVAILABLE) answer the
    store is reopened, and a read (Get...) is tried once more on the new connection; a write is
    not repeated (it may have committed before the connection broke), its error goes back as
    the C++ server would return it. While the database cannot be reached, calls answer
    UNAVAILABLE, which KFP's Go client retries with backoff.
    """

    REOPEN_AFTER = frozenset(
        {grpc.StatusCode.INTERNAL.value[0], grpc.StatusCode.UNAVAILABLE.value[0]}
    )

    def __init__(
        self,
        config: mlmd_pb2.ConnectionConfig,
        migration: mlmd_pb2.MigrationOptions,
        reconnect: bool,
    ):
        self._config = config.SerializeToString()
        self._migration = migration.SerializeToString()
        self._reconnect = reconnect
        self._store: object | None = self._open()
        self.lock = threading.Lock()

    def _open(self) -> object:
        return pywrap.CreateMetadataStore(self._config, self._migration)

    def _invoke(self, method: str, request: bytes) -> tuple[bytes, int, str]:
        if self._store is None:
            try:
                self._store = self._open()
                log.info("reconnected to the database")
            except RuntimeError as err:
                return b"", grpc.StatusCode.UNAVAILABLE.value[0], f"no database: {err}"
        response, message, code = getattr(pywrap, method)(self._store, request)
        return response, code, message.decode("utf-8", "replace")

    def call(self, method: str, request: bytes) -> tuple[bytes, int, str]:
        """Runs one store method on serialized bytes; the caller holds `lock`."""
        response, code, message = self._invoke(method, request)
        if self._reconnect and code in self.REOPEN_AFTER:
            log.warning(
                "%s failed (%s); reopening the database connection", method, one_line(message)
            )
            self._store = None
            if method.startswith("Get"):
                response, code, message = self._invoke(method, request)
        return response, code, message


def _fan_out(
    store: Store,
    many_request: type,
    many_response: type,
    one_method: str,
    one_request: type,
    one_response: type,
    field: str,
) -> Handler:
    """A `...ByContexts` method from the `...ByContext` one the pybind module has.

    Like the C++ store, the response maps only the contexts that have parents (children).
    """

    def handle(request: bytes) -> tuple[bytes, int, str]:
        many = many_request.FromString(request)
        result = many_response()
        for context_id in dict.fromkeys(many.context_ids):
            one = one_request(context_id=context_id)
            if many.HasField("transaction_options"):
                one.transaction_options.CopyFrom(many.transaction_options)
            raw, code, message = store.call(one_method, one.SerializeToString())
            if code:
                return b"", code, message
            contexts = one_response.FromString(raw).contexts
            if contexts:
                getattr(result.contexts[context_id], field).extend(contexts)
        return result.SerializeToString(), 0, ""

    return handle


def handlers(store: Store) -> dict[str, Handler]:
    """Method name -> handler, for every method of the service descriptor."""
    composed = {
        "GetParentContextsByContexts": _fan_out(
            store,
            service_pb2.GetParentContextsByContextsRequest,
            service_pb2.GetParentContextsByContextsResponse,
            "GetParentContextsByContext",
            service_pb2.GetParentContextsByContextRequest,
            service_pb2.GetParentContextsByContextResponse,
            "parent_contexts",
        ),
        "GetChildrenContextsByContexts": _fan_out(
            store,
            service_pb2.GetChildrenContextsByContextsRequest,
            service_pb2.GetChildrenContextsByContextsResponse,
            "GetChildrenContextsByContext",
            service_pb2.GetChildrenContextsByContextRequest,
            service_pb2.GetChildrenContextsByContextResponse,
            "children_contexts",
        ),
    }
    table: dict[str, Handler] = {}
    for method in SERVICE.methods:
        name = method.name
        if hasattr(pywrap, name):
            table[name] = lambda request, name=name: store.call(name, request)
        elif name in composed:
            table[name] = composed[name]
        else:
            # The C++ store of ml-metadata 1.17 answers GetLineageGraph with this very status.
            code = grpc.StatusCode.UNIMPLEMENTED.value[0]
            table[name] = lambda _request, name=name, code=code: (
                b"",
                code,
                f"{name} is not implemented.",
            )
    return table


def generic_handler(store: Store) -> grpc.GenericRpcHandler:
    """The service, request and response left serialized (no deserializer: bytes in and out)."""

    def rpc(name: str, handle: Handler) -> grpc.RpcMethodHandler:
        def behavior(request: bytes, context: grpc.ServicerContext) -> bytes:
            with store.lock:
                response, code, message = handle(request)
            if code:
                # The C++ server logs every failed call too; the store's messages span lines.
                log.warning("%s failed: %s", name, one_line(message))
                context.abort(STATUS_BY_CODE.get(code, grpc.StatusCode.UNKNOWN), message)
            return response

        return grpc.unary_unary_rpc_method_handler(behavior)

    return grpc.method_handlers_generic_handler(
        SERVICE.full_name, {name: rpc(name, h) for name, h in handlers(store).items()}
    )


def channel_arguments(text: str) -> list[tuple[str, int | str]]:
    """`k=v,k=v` as the C++ server's --grpc_channel_arguments: integers where they parse."""
    pairs: list[tuple[str, int | str]] = []
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected key=value, got {item!r}")
        try:
            pairs.append((key, int(value)))
        except ValueError:
            pairs.append((key, value))
    return pairs


def connection_config(args: argparse.Namespace) -> tuple[mlmd_pb2.ConnectionConfig, str]:
    """The store's ConnectionConfig and a description of it for the log (no password)."""
    config = mlmd_pb2.ConnectionConfig()
    if args.postgres_config_host or args.postgres_config_hostaddr:
        pg = config.postgresql
        for field in ("host", "hostaddr", "port", "user", "password", "dbname"):
            value = getattr(args, f"postgres_config_{field}")
            if value:
                setattr(pg, field, value)
        pg.skip_db_creation = args.postgres_config_skip_db_creation
        where = pg.host or pg.hostaddr
        return config, f"postgresql://{pg.user}@{where}:{pg.port}/{pg.dbname}"
    path = os.path.abspath(args.sqlite_path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = mlmd_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return config, f"sqlite:{path}"


def open_store(
    args: argparse.Namespace, config: mlmd_pb2.ConnectionConfig, stopping: threading.Event
) -> Store | None:
    """Connects, or None when stopped meanwhile.

    A database server may start after this pod, so PostgreSQL is retried as the C++ server
    retries (--metadata_store_connection_retries); a SQLite file that cannot be opened will
    not open later (a read-only /data, a missing volume): that fails at once.
    """
    migration = mlmd_pb2.MigrationOptions(enable_upgrade_migration=args.enable_database_upgrade)
    server = config.HasField("postgresql")
    tries = max(1, args.metadata_store_connection_retries) if server else 1
    for attempt in range(1, tries):
        try:
            return Store(config, migration, reconnect=server)
        except RuntimeError as err:
            log.warning("connecting to the store failed (try %d of %d): %s", attempt, tries, err)
            if stopping.wait(min(2.0**attempt, 30.0)):
                return None
    return Store(config, migration, reconnect=server)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grpc_port", type=int, default=8080)
    parser.add_argument(
        "--grpc_channel_arguments",
        type=channel_arguments,
        default=channel_arguments(DEFAULT_CHANNEL_ARGUMENTS),
        help=f"k=v,... gRPC server options (default: {DEFAULT_CHANNEL_ARGUMENTS})",
    )
    parser.add_argument("--sqlite_path", default="/data/mlmd.sqlite")
    parser.add_argument("--enable_database_upgrade", action="store_true")
    parser.add_argument("--metadata_store_connection_retries", type=int, default=5)
    pg = parser.add_argument_group("PostgreSQL (instead of SQLite when a host is given)")
    for field in ("host", "hostaddr", "port", "user", "dbname"):
        pg.add_argument(f"--postgres_config_{field}", default="")
    pg.add_argument(
        "--postgres_config_password",
        default=os.environ.get("POSTGRES_PASSWORD", ""),
        help="default: $POSTGRES_PASSWORD (a flag shows in the process list)",
    )
    pg.add_argument("--postgres_config_skip_db_creation", action="store_true")
    parser.add_argument("--workers", type=int, default=8, help="threads taking RPCs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    args = parse_args(argv)
    config, storage = connection_config(args)
    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: stopping", signal.strsignal(signum))
        stopping.set()

    # Before connecting: a pod deleted while PostgreSQL is retried stops at once.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started = time.monotonic()
    try:
        store = open_store(args, config, stopping)
    except RuntimeError as err:
        log.error("cannot open the store at %s: %s", storage, err)
        return 1
    if store is None:
        return 0
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="rpc"),
        handlers=[generic_handler(store)],
        options=args.grpc_channel_arguments,
    )
    address = f"[::]:{args.grpc_port}"
    if server.add_insecure_port(address) == 0:
        log.error("cannot listen on %s", address)
        return 1
    server.start()
    native = sum(hasattr(pywrap, m.name) for m in SERVICE.methods)
    log.info(
        "ml-metadata %s (grpcio %s, protobuf %s): %s, %d methods (%d by the store) on %s, "
        "storage %s, ready in %.2fs",
        mlmd_version,
        grpc.__version__,
        protobuf_version,
        SERVICE.full_name,
        len(SERVICE.methods),
        native,
        address,
        storage,
        time.monotonic() - started,
    )
    stopping.wait()
    server.stop(STOP_GRACE_S).wait()
    # Taken after the last RPC in flight has left the store.
    with store.lock:
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
