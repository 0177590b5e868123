"""The one typed settings object of GridLake.

Every host, port, path and memory size lives here. Values come from ``GRIDLAKE_*``
environment variables (nested sections use ``__``, e.g. ``GRIDLAKE_KAFKA__BOOTSTRAP``)
or a ``.env`` file; the defaults describe the local single-machine stack.

Settings are built in entry points (``load_settings()``), never at import time.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lakehouse.time import DAY_MS

REPO_ROOT = Path(__file__).resolve().parent.parent


class KafkaSettings(BaseModel):
    """Kafka broker (KRaft). ``managed=False`` points GridLake at an existing cluster."""

    bootstrap: str = "127.0.0.1:9092"
    managed: bool = True
    controller_port: int = 9093
    heap: str = "512m"
    partitions: int = 2
    replication_factor: int = 1
    topic_prefix: str = "gridlake."

    @property
    def host(self) -> str:
        """Host part of the first bootstrap address."""
        return self.bootstrap.split(",")[0].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        """Port of the first bootstrap address."""
        return int(self.bootstrap.split(",")[0].rsplit(":", 1)[1])


class DataNodeSettings(BaseModel):
    """One DataNode role ("slave1", "slave2") of the local HDFS."""

    name: str
    data_port: int
    http_port: int
    ipc_port: int


class HdfsSettings(BaseModel):
    """HDFS: a NameNode ("master") and DataNodes ("slave1", "slave2")."""

    namenode_host: str = "127.0.0.1"
    namenode_rpc_port: int = 8020
    namenode_http_port: int = 9870
    managed: bool = True
    replication: int = 2
    heap: str = "384m"
    datanode_heap: str = "256m"
    user: str = "gridlake"
    lake_root: str = "/gridlake/lake"
    datanodes: list[DataNodeSettings] = Field(
        default_factory=lambda: [
            DataNodeSettings(name="slave1", data_port=9866, http_port=9864, ipc_port=9867),
            DataNodeSettings(name="slave2", data_port=9876, http_port=9874, ipc_port=9877),
        ]
    )

    @property
    def uri(self) -> str:
        """``hdfs://host:port`` of the NameNode (fs.defaultFS)."""
        return f"hdfs://{self.namenode_host}:{self.namenode_rpc_port}"

    @property
    def webhdfs_url(self) -> str:
        """HTTP address of WebHDFS on the NameNode."""
        return f"http://{self.namenode_host}:{self.namenode_http_port}"

    @property
    def lake_uri(self) -> str:
        """Fully qualified root of the lakehouse tables."""
        return f"{self.uri}{self.lake_root}"


class RedisSettings(BaseModel):
    """Redis, the serving copy and API cache."""

    url: str = "redis://127.0.0.1:6379/0"
    managed: bool = True
    maxmemory: str = "512mb"
    maxmemory_policy: str = "volatile-lru"
    key_prefix: str = "gridlake:"

    @property
    def host(self) -> str:
        """Host part of the URL."""
        return self.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        """Port part of the URL."""
        hostport = self.url.split("://", 1)[1].split("/", 1)[0]
        return int(hostport.rsplit(":", 1)[1]) if ":" in hostport else 6379


class FlinkSettings(BaseModel):
    """Flink.

    ``master="local"`` runs each job in a local PyFlink mini-cluster process;
    ``host:port`` submits to a remote JobManager's REST endpoint.

    Lateness: ``watermark_delay_ms`` is how far the watermark of a Kafka partition runs
    behind the largest event time read from it (records behind it are flagged ``late``
    but still counted);
    ``allowed_lateness_ms`` is how far behind the watermark a record may still update
    summaries (beyond it: ``too_late``, kept in ODS/DWD only). It must stay below
    ``state_ttl`` so that the state a late record updates still exists.
    """

    master: str = "local"
    rest_port: int = 8081
    parallelism: int = 1
    checkpoint_interval_ms: int = 5000
    checkpoint_dir: str | None = None
    savepoint_dir: str | None = None
    resume_from: str | None = None
    heap: str = "1536m"
    managed_memory: str = "128m"
    network_memory: str = "64m"
    state_ttl: str = "2 d"
    mini_batch_latency: str = "500 ms"
    state_backend: str = "rocksdb"
    watermark_delay_ms: int = 300_000
    allowed_lateness_ms: int = DAY_MS
    #: Port of the streaming job's Prometheus reporter (``None``: no reporter). A range
    #: (``9249-9259``) lets several TaskManagers of a remote cluster share a host. Flink's
    #: reporter binds every interface (it has no address option): firewall the port.
    prometheus_port: str | None = Field(default="9249", pattern=r"^\d{1,5}(-\d{1,5})?$")

    @field_validator("prometheus_port", mode="before")
    @classmethod
    def _no_reporter(cls, v: object) -> object:
        # GRIDLAKE_FLINK__PROMETHEUS_PORT= (empty) or "none" turns the reporter off
        if isinstance(v, str) and v.strip().lower() in ("", "none", "null", "off"):
            return None
        return v


#: Pause between two attempts to take a Hudi table lock.
LOCK_RETRY_MS = 2000


class LakeSettings(BaseModel):
    """Hudi table services, the same for every writer (Flink stream, Spark backfill).

    ``compaction_delta_commits``: a MERGE_ON_READ table is compacted (log files merged into
    new base files) inline by its writer after this many delta commits.
    ``clustering_commits``: the streaming writer gives the new keys of a commit to MERGE_ON_READ
    tables a file group of their own and merges the small file groups of a table inline
    after this many commits (clustering).
    ``clean_commits_retained``: file versions needed by the last N commits are kept; older
    ones are deleted by the clean that follows a commit (readers running longer than N
    commits may fail, so N times the checkpoint interval must exceed the longest query).
    Archiving keeps between ``archive_min_commits`` and ``archive_max_commits`` instants in the
    active timeline; it must keep more than are retained for cleaning.

    Concurrency: the streaming job and backfills write the same tables. With
    ``concurrency="optimistic"`` every writer takes a table lock around its commit and a
    commit that touched a file group another writer changed since it started is rolled back
    and written again (the stream retries the commit, a backfill the table).
    ``lock_provider`` is Hudi's lock provider class: the default keeps the lock as a file
    in the table's ``.hoodie`` directory (HDFS); a cluster may use ZooKeeper
    (``org.apache.hudi.client.transaction.lock.ZookeeperBasedLockProvider`` plus its
    ``hoodie.write.lock.zookeeper.*`` settings in ``lock_options``).
    A file lock left by a writer that died holding it is taken over after
    ``lock_expire_minutes`` (Hudi's own Flink writer uses 1; a commit holds the lock for
    seconds). A writer waits at most ``lock_wait_s`` for the lock, then fails: that wait must
    end before Flink's task cancellation timeout (180 s), after which Flink kills the whole
    TaskManager of a task that does not stop, and outlast the expiry of a stale lock.
    ``single_writer`` is for a lake that exactly one process writes (no lock, a new writer
    rolls back any other's unfinished commit at once): then a backfill must not run while
    the stream writes.
    """

    concurrency: Literal["optimistic", "single_writer"] = "optimistic"
    lock_provider: str = "org.apache.hudi.client.transaction.lock.FileSystemBasedLockProvider"
    lock_expire_minutes: int = Field(default=1, ge=1)
    lock_wait_s: int = Field(default=90, ge=10, le=150)
    lock_options: dict[str, str] = Field(default_factory=dict)
    compaction_delta_commits: int = Field(default=5, ge=1)
    clustering_commits: int = Field(default=10, ge=1)
    clean_commits_retained: int = Field(default=10, ge=1)
    archive_min_commits: int = Field(default=20, ge=2)
    archive_max_commits: int = Field(default=30, ge=3)

    @model_validator(mode="after")
    def _lock_wait_outlasts_expiry(self) -> LakeSettings:
        if self._file_lock and self.lock_wait_s <= 60 * self.lock_expire_minutes:
            raise ValueError(
                f"lake.lock_wait_s ({self.lock_wait_s}) must exceed lake.lock_expire_minutes "
                f"({self.lock_expire_minutes} min): a lock left by a dead writer would otherwise "
                "fail every writer until it expires")
        return self

    @model_validator(mode="after")
    def _archive_after_clean(self) -> LakeSettings:
        if self.archive_min_commits <= self.clean_commits_retained:
            raise ValueError(
                f"lake.archive_min_commits ({self.archive_min_commits}) must exceed "
                f"lake.clean_commits_retained ({self.clean_commits_retained})"
            )
        if self.archive_max_commits <= self.archive_min_commits:
            raise ValueError(
                f"lake.archive_max_commits ({self.archive_max_commits}) must exceed "
                f"lake.archive_min_commits ({self.archive_min_commits})"
            )
        return self

    def _lock_attempts(self) -> int:
        # the file-system provider's tryLock answers at once; others wait up to their own
        # timeout (hoodie.write.lock.wait_time_ms) before the pause between attempts
        per_attempt = LOCK_RETRY_MS if self._file_lock else 2 * LOCK_RETRY_MS
        return -(-self.lock_wait_s * 1000 // per_attempt)

    @property
    def _file_lock(self) -> bool:
        return self.lock_provider.endswith(".FileSystemBasedLockProvider")

    def hoodie_options(self) -> dict[str, str]:
        """The table-service and concurrency settings as Hudi write configs."""
        options = {
            "hoodie.compact.inline.max.delta.commits": str(self.compaction_delta_commits),
            "hoodie.clustering.inline.max.commits": str(self.clustering_commits),
            "hoodie.clean.commits.retained": str(self.clean_commits_retained),
            "hoodie.keep.min.commits": str(self.archive_min_commits),
            "hoodie.keep.max.commits": str(self.archive_max_commits),
        }
        if self.concurrency == "optimistic":
            options.update({
                "hoodie.write.concurrency.mode": "optimistic_concurrency_control",
                "hoodie.write.lock.provider": self.lock_provider,
                "hoodie.write.lock.filesystem.expire": str(self.lock_expire_minutes),
                # Hudi retries 50 x 5 s by default, longer than Flink waits for a cancelled
                # task (lock_wait_s)
                "hoodie.write.lock.wait_time_ms": str(LOCK_RETRY_MS),
                "hoodie.write.lock.client.wait_time_ms_between_retry": str(LOCK_RETRY_MS),
                "hoodie.write.lock.client.num_retries": str(self._lock_attempts()),
                # a failed writer's files are rolled back by the cleaner once its heartbeat
                # expires, not eagerly by the next writer (which may be the other engine)
                "hoodie.clean.failed.writes.policy": "LAZY",
            })
            options.update(self.lock_options)
        return options


class SparkSettings(BaseModel):
    """Spark for batch backfills and lake reads."""

    master: str = "local[2]"
    driver_memory: str = "2g"


class AlarmSettings(BaseModel):
    """Thresholds turning ADS values into alarms on the API's real-time feed.

    Attributes:
        transformer_loading_pct: Daily loading rate (% of rated kVA) above which a
            transformer raises ``transformer_overload``.
        voltage_qualification_pct: Daily voltage qualification rate below which an entity
            raises ``voltage_unqualified``.
        line_loss_pct: Daily feeder line-loss rate above which ``line_loss_high`` is raised.
        ess_cell_temp_c: Highest cell temperature of a bank above which ``ess_overheat``
            is raised.
        quality_score_pct: Data-quality score of a region below which
            ``data_quality_low`` is raised.

    """

    transformer_loading_pct: float = 100.0
    voltage_qualification_pct: float = 95.0
    line_loss_pct: float = 10.0
    ess_cell_temp_c: float = 45.0
    quality_score_pct: float = 90.0


class ApiSettings(BaseModel):
    """The FastAPI service (served by gunicorn with uvicorn workers).

    Attributes:
        host: Address the server binds.
        port: Port of the server.
        workers: Worker processes (each holds its own connections and caches).
        database_url: SQLAlchemy URL of the users/roles/audit database; ``None`` means the
            embedded SQLite file ``home/api/gridlake-api.db``. PostgreSQL:
            ``postgresql+psycopg://user:password@host:5432/gridlake``.
        jwt_secret: HMAC key signing the tokens; ``None`` means a random key generated once
            into ``home/run/api-jwt-secret`` (shared by the workers).
        jwt_issuer: ``iss`` claim of the tokens.
        access_token_minutes: Lifetime of an access token.
        refresh_token_days: Lifetime of a refresh token (single use: each refresh rotates it).
        admin_username: The first administrator, created when the database has no user.
        admin_password: Their password; ``None`` means a random one written to
            ``home/run/api-admin-password``.
        password_min_length: Shortest password accepted; the rest of the password policy
            (no control characters, not blank, not the username, not a common password,
            enough distinct characters) is fixed (``api.security.check_password``).
        auth_recheck_s: How long a worker trusts its cached copy of a user's state (exists,
            active, session epoch) for read requests. Writes, user management and the audit
            log always read the database, so deletion, deactivation and role, region or
            password changes end old access tokens at once for them and within this bound
            for reads; 0 checks the database on every request.
        login_max_failures: Failed sign-ins of one account within ``login_window_s`` before
            it is locked.
        login_max_failures_per_address: Failed sign-ins from one client address within
            ``login_window_s`` before the address is locked.
        login_window_s: Failures older than this (since the key's last failure) are
            forgotten.
        login_lockout_s: First lock; each further failure after a lock doubles it.
        login_lockout_max_s: Longest lock.
        trusted_proxies: Addresses or networks (``10.0.0.0/8``) of reverse proxies whose
            ``X-Forwarded-For`` is believed; empty (the default) believes no one and takes
            the client address from the connection.
        rate_limit_per_s: Requests per second per user (per client address before login),
            per worker process. Well below what one worker serves (docs/benchmarks.md:
            about 260 uncached and 4,000 cached answers/s), so one user cannot take a
            worker; a 429 says when to retry (``Retry-After``).
        rate_limit_burst: Requests a user may make at once before the rate applies (a
            dashboard opening with tens of panels).
        max_body_bytes: Largest request body (413 above it).
        ml_max_body_bytes: Largest body of the ML scoring proxy.
        max_page_size: Largest ``limit`` of a listing.
        max_range_days: Longest time range of one query.
        cache_ttl_s: Lifetime of a cached response (new data invalidates it earlier).
        redis_timeout_s: Socket timeout of the serving-copy connection.
        redis_retry_s: After a Redis failure, how long queries go to the lake before Redis
            is tried again (no request waits on a dead Redis meanwhile).
        lake_timeout_s: WebHDFS timeout of lake reads.
        lake_file_cache: Parquet files of the lake kept decoded in memory (per worker).
        ml_url: The ML microservice; ``None`` means ``http://<ml.host>:<ml.port>``.
        ml_timeout_s: Timeout of a proxied ML request.
        alarms: Alarm thresholds of the feed.
        feed_connections_per_user: Feed (Server-Sent Events) streams one user may hold open
            at once, per worker process (429 beyond).
        backfill_max_days: Longest range of a backfill launched through the API (422
            beyond; the CLI has no such bound).
        max_active_jobs: Jobs (backfills, imports) queued or running at once, counted over
            the whole home (every worker and the CLI); a launch through the API beyond it is
            429. One by default: a job's Spark takes both cores of the reference machine,
            and concurrent jobs writing the same tables conflict.
        metrics_public: Whether ``GET /metrics`` (Prometheus) answers without credentials.
            True by default, as the API binds loopback; when the API is reachable from
            other hosts, set it False and give the scraper ``metrics_token``
            (docs/operations.md).
        metrics_token: Static bearer token a scraper sends to ``/metrics`` when it is not
            public (``None`` with ``metrics_public`` False: ``/metrics`` answers 404).
        metrics_cache_s: How long the gauges computed on scrape (Kafka lag, lake and
            serving freshness, open alarms) are reused.
        metrics_timeout_s: Longest a scrape waits for those gauges; beyond it the
            previous values are sent (and the refresh goes on in the background).

    """

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    database_url: str | None = None
    jwt_secret: SecretStr | None = None
    jwt_issuer: str = "gridlake"
    access_token_minutes: int = Field(default=15, ge=1)
    refresh_token_days: int = Field(default=7, ge=1)
    admin_username: str = "admin"
    admin_password: SecretStr | None = None
    password_min_length: int = Field(default=10, ge=6)
    auth_recheck_s: float = Field(default=5.0, ge=0, le=300)
    login_max_failures: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=50, ge=1)
    login_window_s: float = Field(default=900.0, gt=0)
    login_lockout_s: float = Field(default=30.0, gt=0)
    login_lockout_max_s: float = Field(default=900.0, gt=0)
    trusted_proxies: list[str] = Field(default_factory=list)
    rate_limit_per_s: float = Field(default=50.0, gt=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    ml_max_body_bytes: int = Field(default=64 * 1_048_576, ge=1024)
    max_page_size: int = Field(default=10_000, ge=1)
    max_range_days: int = Field(default=366, ge=1)
    cache_ttl_s: int = Field(default=300, ge=1)
    redis_timeout_s: float = Field(default=0.5, gt=0)
    redis_retry_s: float = Field(default=2.0, gt=0)
    lake_timeout_s: float = Field(default=10.0, gt=0)
    lake_file_cache: int = Field(default=256, ge=0)
    ml_url: str | None = None
    ml_timeout_s: float = Field(default=60.0, gt=0)
    alarms: AlarmSettings = Field(default_factory=AlarmSettings)
    feed_connections_per_user: int = Field(default=4, ge=1)
    backfill_max_days: int = Field(default=92, ge=1)
    max_active_jobs: int = Field(default=1, ge=1)
    metrics_public: bool = True
    metrics_token: SecretStr | None = None
    metrics_cache_s: float = Field(default=15.0, ge=0)
    metrics_timeout_s: float = Field(default=2.0, gt=0)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        # normalised here so that a typo fails at start, not as an unexplained 429
        out = []
        for item in v:
            try:
                out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"api.trusted_proxies: {item!r} is not an IP address or "
                                 "network") from None
        return out

    @model_validator(mode="after")
    def _lockout_cap(self) -> ApiSettings:
        if self.login_lockout_max_s < self.login_lockout_s:
            raise ValueError(f"api.login_lockout_max_s ({self.login_lockout_max_s}) must be at "
                             f"least api.login_lockout_s ({self.login_lockout_s})")
        return self

    @property
    def base_url(self) -> str:
        """Root URL of the service."""
        return f"http://{self.host}:{self.port}"


class SimulatorSettings(BaseModel):
    """Defaults of the mock device fleet."""

    seed: int = 42
    meters: int = 3000
    linger_ms: int = 20
    batch_size: int = 262144
    # kafka-python compresses in Python; on a local broker "none" (with crc32c) is fastest.
    compression: str = "none"


class NetworkSettings(BaseModel):
    """Listen addresses for services whose clients are on other hosts (containers).

    The defaults keep the local stack on loopback: every service binds the host it
    advertises and DataNodes register as ``127.0.0.1``. The compose deployment
    (``docker/``) sets ``bind_host=0.0.0.0``, each DataNode's container hostname and
    ``redis_protected_mode=false``.

    Attributes:
        bind_host: Address Kafka, the HDFS daemons and Redis listen on (``0.0.0.0``);
            ``None`` binds each service's advertised host.
        datanode_hostname: Hostname a DataNode advertises and registers with at the
            NameNode; ``None`` means ``127.0.0.1``.
        redis_protected_mode: Redis ``protected-mode`` (with no password it refuses
            clients that are not on loopback).

    """

    bind_host: str | None = None
    datanode_hostname: str | None = None
    redis_protected_mode: bool = True


class MlSettings(BaseModel):
    """The ML microservice (equipment anomaly detection) and its model registry.

    Attributes:
        registry: Where models are stored: ``hdfs`` (WebHDFS under ``hdfs_root``) or
            ``local`` (a directory under ``local_dir``).
        hdfs_root: Root directory of the model registry on HDFS.
        local_dir: Local model directory (the local registry, and the download cache of
            the HDFS registry); ``None`` means ``home/models``.
        host: Address the ML service binds.
        port: Port of the ML service.
        batch_size: Windows per forward pass when scoring.
        active_model: Model id the service activates at start; ``None`` means the newest.
        score_hours: Look-back of ``gridlake ml score`` when no range is given (hours up
            to now).
        metrics_public: Whether the service answers ``GET /metrics`` (Prometheus; it binds
            loopback by default and has no credentials of its own: set False when it is
            reachable from other hosts and scrape it through a proxy).

    """

    registry: str = "hdfs"
    hdfs_root: str = "/gridlake/models"
    local_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8100
    batch_size: int = 64
    active_model: str | None = None
    score_hours: float = Field(default=24.0, gt=0)
    metrics_public: bool = True


class ImageSettings(BaseModel):
    """Equipment images: where imported files live and what an import accepts.

    Attributes:
        hdfs_root: Root of the image store on HDFS (files content-addressed below it).
        max_bytes: Largest image file accepted.
        max_pixels: Largest width × height accepted (decompression-bomb guard).
        upload_workers: Parallel uploads of an import.
        active_classifier: Image classifier the ML service serves; ``None``: the newest.
        active_autoencoder: Unsupervised image model the ML service serves; ``None``: the
            newest.

    """

    hdfs_root: str = "/gridlake/images"
    max_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    max_pixels: int = Field(default=40_000_000, gt=0)
    upload_workers: int = Field(default=8, ge=1, le=64)
    active_classifier: str | None = None
    active_autoencoder: str | None = None


#: What an allowed parent origin of embedded views looks like (CSP ``frame-ancestors``).
_ORIGIN = r"^https?://(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?$"


class WebSettings(BaseModel):
    """The dashboard behind Nginx, and the signed embedding of its views.

    Attributes:
        managed: Whether GridLake runs Nginx (Debian's ``nginx``) as a stack service.
        host: Address Nginx listens on.
        port: Port of the dashboard (unprivileged: Nginx runs as the stack's user).
        public_url: The dashboard's address as browsers reach it (printed by ``gridlake
            run``, used in signed embed URLs); ``None`` means ``http://<host>:<port>``.
        dist_dir: The built single-page app (``web/dist``, from ``npm run build`` in
            ``web/``); ``None`` means the repository's ``web/dist``. When it is missing
            Nginx still starts and ``/`` says how to build it.
        embed_secret: HMAC key (HS256, at least 32 bytes) of embed tokens, shared with the
            portal's server that signs them. ``None`` means a random key generated once
            into ``home/run/web-embed-secret`` (mode 0600), which suits the local stack
            (``gridlake embed sign`` reads the same file); a deployment whose portal signs
            on another machine sets it explicitly (``GRIDLAKE_WEB__EMBED_SECRET``), from
            a secret store, never from code.
        embed_allowed_origins: Origins (``https://portal.example.com``) allowed to frame
            ``/embed/*`` pages (``Content-Security-Policy: frame-ancestors``); empty means
            the dashboard's own origin only.
        embed_token_ttl_s: Lifetime of the tokens ``gridlake embed sign`` issues.
        embed_max_ttl_s: Longest lifetime (``exp - iat``) the API accepts in an embed
            token, whoever signed it: a leaked URL stops working soon.
        worker_connections: Connections one Nginx worker holds (open event streams
            included).
        stream_timeout_s: How long Nginx waits between two bytes of an API answer (the
            event stream sends a keep-alive comment every 15 s).

    """

    managed: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1024, le=65535)
    public_url: str | None = None
    dist_dir: Path | None = None
    embed_secret: SecretStr | None = None
    embed_allowed_origins: list[str] = Field(default_factory=list)
    embed_token_ttl_s: int = Field(default=300, ge=10)
    embed_max_ttl_s: int = Field(default=3600, ge=10)
    worker_connections: int = Field(default=1024, ge=64)
    stream_timeout_s: int = Field(default=3600, ge=10)

    @field_validator("embed_allowed_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        # checked here: a space or a semicolon would inject directives into the CSP header
        out = []
        for item in v:
            origin = item.strip().rstrip("/")
            if not re.match(_ORIGIN, origin):
                raise ValueError(f"web.embed_allowed_origins: {item!r} is not an origin "
                                 "like https://portal.example.com[:port]")
            out.append(origin)
        return out

    @model_validator(mode="after")
    def _ttl_within_max(self) -> WebSettings:
        if self.embed_token_ttl_s > self.embed_max_ttl_s:
            raise ValueError(f"web.embed_token_ttl_s ({self.embed_token_ttl_s}) must not exceed "
                             f"web.embed_max_ttl_s ({self.embed_max_ttl_s})")
        return self

    @property
    def dist(self) -> Path:
        """The built app's directory."""
        return (self.dist_dir or REPO_ROOT / "web" / "dist").expanduser().resolve()

    @property
    def base_url(self) -> str:
        """The dashboard's address."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class StartupSettings(BaseModel):
    """What ``gridlake run`` (``make run``) prepares before the platform goes live.

    Attributes:
        history_days: Whole days (UTC) of the default fleet's history before today that
            the first run loads in bulk into ODS and backfills through DIM to ADS, so
            that the first daily figures cover real days; 0 skips it.
        train_steps: Training steps of the small AnomalyBERT trained when the model
            registry is empty.
        train_hours: Hours of simulated normal data it is trained on.

    """

    history_days: int = Field(default=1, ge=0, le=30)
    train_steps: int = Field(default=60, ge=1)
    train_hours: float = Field(default=12.0, gt=0)


class GridLakeSettings(BaseSettings):
    """All of GridLake's configuration, one nested section per service."""

    model_config = SettingsConfigDict(
        env_prefix="GRIDLAKE_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    home: Path = Field(default=REPO_ROOT / ".gridlake", description="State: data, logs, pids.")
    jars_dir: Path | None = Field(default=None, description="Resolved jars; default home/jars.")
    java_home: Path | None = None
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    hdfs: HdfsSettings = Field(default_factory=HdfsSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    flink: FlinkSettings = Field(default_factory=FlinkSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    lake: LakeSettings = Field(default_factory=LakeSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    ml: MlSettings = Field(default_factory=MlSettings)
    startup: StartupSettings = Field(default_factory=StartupSettings)
    images: ImageSettings = Field(default_factory=ImageSettings)
    web: WebSettings = Field(default_factory=WebSettings)

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @property
    def jars(self) -> Path:
        """Directory of resolved jars, one sub-directory per component."""
        return (self.jars_dir or self.home / "jars").expanduser().resolve()

    @property
    def logs(self) -> Path:
        """Directory of service and job logs."""
        return self.home / "logs"

    @property
    def run(self) -> Path:
        """Directory of pid files and runtime state."""
        return self.home / "run"

    @property
    def data(self) -> Path:
        """Directory of service data (Kafka logs, HDFS blocks, Redis dumps)."""
        return self.home / "data"


def load_settings(**overrides: object) -> GridLakeSettings:
    """Build the settings from the environment; call this in entry points only."""
    return GridLakeSettings(**overrides)  # type: ignore[arg-type]
