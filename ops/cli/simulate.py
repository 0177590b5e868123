"""``gridlake simulate``: run the mock device fleet or a public-data replay, or draw images.

Every option is validated before anything is published; an invalid value prints one
``error:`` line and exits with code 2. An unreachable Kafka exits with code 1 after
bounded retries, and so does a run in which some messages could not be delivered.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from mock_devices.config import DEVICE_KINDS  # cheap (no dependencies): named in a --help

if TYPE_CHECKING:
    from infra.kafka_client import PublishReport, Sink
    from mock_devices.clock import Pacer
    from mock_devices.config import Record
    from mock_devices.runner import Progress as RunProgress

app = typer.Typer(help="Mock device fleet: grid telemetry into Kafka, equipment images.",
                  no_args_is_help=True, add_completion=False)
out = Console()
err = Console(stderr=True)
log = logging.getLogger(__name__)


def _settings() -> Any:
    # lazy: the fleet, Kafka client and settings; `--help` needs none
    from infra.settings import load_settings

    return load_settings()


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _time_range(
    mode: str | None, start: str | None, end: str | None, duration: str | None,
    speedup: float,
) -> tuple[str, int, int | None]:
    """Resolve mode, start and end; raise ConfigError on inconsistent values."""
    # lazy: the fleet, Kafka client and settings; `--help` needs none
    from lakehouse.time import format_time_ms

    # lazy: see above
    from mock_devices.clock import MODES, realtime_start

    # lazy: see above
    from mock_devices.config import ConfigError, parse_duration_ms, parse_time_ms

    if not speedup > 0:
        raise ConfigError(f"--speedup must be positive, got {speedup}")
    if mode is None:
        mode = "accelerated" if speedup != 1 else ("historical" if start else "realtime")
    if mode not in MODES:
        raise ConfigError(f"unknown --mode {mode!r}; choose from {', '.join(MODES)}")
    if mode == "realtime" and speedup != 1:
        raise ConfigError("--speedup does not apply to realtime mode (use accelerated)")
    if end and duration:
        raise ConfigError("give --end or --duration, not both")
    if mode == "realtime" and start:
        raise ConfigError("realtime mode starts now; --start applies to the other modes")
    start_ms = parse_time_ms(start) if start else realtime_start()
    end_ms: int | None = None
    if end:
        end_ms = parse_time_ms(end)
        if end_ms <= start_ms:
            raise ConfigError(
                f"date range is reversed or empty: --end {end} is not after the start "
                f"{format_time_ms(start_ms)}"
            )
    elif duration:
        end_ms = start_ms + parse_duration_ms(duration)
    if mode == "historical" and (start is None or end_ms is None):
        raise ConfigError("historical mode needs --start and --end (or --duration)")
    return mode, start_ms, end_ms


def _sink(output: Path | None, dry_run: bool, settings: Any, prefix: str,
          connect_retries: int, make_topics: bool, connect_timeout: float) -> Sink:
    # lazy: the fleet, Kafka client and settings; `--help` needs none
    from infra.kafka_client import (
        JsonlSink,
        KafkaUnavailableError,
        NullSink,
        Publisher,
        create_topics,
    )

    # lazy: see above
    from lakehouse.contracts.registry import all_topics

    # lazy: see above
    from mock_devices.config import ConfigError

    if output is not None and dry_run:
        raise ConfigError("give --output or --dry-run, not both")
    if dry_run:
        return NullSink()
    if output is not None:
        return JsonlSink(output)
    if connect_retries < 1:
        raise ConfigError(f"--connect-retries must be at least 1, got {connect_retries}")
    if not connect_timeout > 0:
        raise ConfigError(f"--connect-timeout must be positive, got {connect_timeout}")
    if make_topics:
        attempts, delay = connect_retries, 1.0
        for attempt in range(1, attempts + 1):
            try:
                create_topics(settings.kafka.bootstrap, prefix,
                              [(t.name, t.compacted) for t in all_topics()],
                              partitions=settings.kafka.partitions,
                              replication_factor=settings.kafka.replication_factor,
                              timeout_s=connect_timeout)
                break
            except KafkaUnavailableError:
                if attempt == attempts:
                    raise KafkaUnavailableError(
                        f"Kafka at {settings.kafka.bootstrap} is unreachable after {attempts} "
                        "attempts; nothing was sent"
                    ) from None
                err.print(f"Kafka at {settings.kafka.bootstrap} unreachable, retrying in "
                          f"{delay:.0f} s ({attempt}/{attempts})")
                time.sleep(delay)
                delay *= 2
    return Publisher.from_settings(settings, topic_prefix=prefix,
                                   connect_attempts=connect_retries,
                                   connect_timeout_s=connect_timeout)


def _drive(records: Iterator[Record], sink: Sink, pacer: Pacer, start_ms: int,
           end_ms: int | None, rate: float | None, labels_file: Path | None,
           label_topic: bool, quiet: bool) -> PublishReport:
    # lazy: the fleet, Kafka client and settings; `--help` needs none
    from lakehouse.time import format_time_ms

    # lazy: see above
    from mock_devices.runner import run_stream

    span = (end_ms - start_ms) if end_ms is not None else None
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
        TextColumn("{task.fields[event]}"), TextColumn("sent {task.fields[sent]:>10,}"),
        TextColumn("{task.fields[rate]:>8,.0f} msg/s"), TimeElapsedColumn(),
        console=err, disable=quiet,
    ) as prog:
        task = prog.add_task(f"{pacer.mode}", total=span, event="", sent=0, rate=0.0)

        def show(p: RunProgress) -> None:
            done = (p.event_ms - start_ms) if p.event_ms is not None else 0
            prog.update(task, completed=min(done, span) if span else done,
                        event=format_time_ms(p.event_ms) if p.event_ms else "",
                        sent=p.sent, rate=p.sent / p.elapsed_s if p.elapsed_s else 0.0)

        return run_stream(records, sink, pacer=pacer, max_rate=rate, labels_file=labels_file,
                          labels_to_sink=label_topic, on_progress=show)


def _summary(report: PublishReport, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    table = Table(title=f"Published to {report.destination}")
    for col in ("topic", "sent", "delivered", "failed"):
        table.add_column(col, justify="left" if col == "topic" else "right")
    for topic in sorted(report.sent):
        table.add_row(topic, f"{report.sent[topic]:,}", f"{report.delivered.get(topic, 0):,}",
                      f"{report.failed.get(topic, 0):,}")
    table.add_row("[bold]total", f"[bold]{report.total_sent:,}",
                  f"[bold]{report.total_delivered:,}", f"[bold]{report.total_failed:,}")
    out.print(table)
    out.print(f"{report.total_delivered:,} messages in {report.elapsed_s:.1f} s = "
              f"[bold]{report.rate:,.0f} msg/s[/] ({report.bytes / 1e6:.1f} MB of JSON"
              f"{f', {report.retried} re-sent' if report.retried else ''})")
    for e in report.errors[:5]:
        out.print(f"[red]delivery error:[/] {e}")


def _finish(report: PublishReport, as_json: bool) -> None:
    _summary(report, as_json)
    if report.aborted and report.aborted != "interrupted":
        err.print(f"[bold red]error:[/] run stopped early: {report.aborted}")
    if report.total_failed:
        err.print(f"[bold red]error:[/] {report.total_failed:,} messages were not delivered")
    if report.total_failed or (report.aborted and report.aborted != "interrupted"):
        raise typer.Exit(1)



# Publishing options shared by `run` and `replay`.
DryRunOpt = Annotated[bool, typer.Option(help="Generate and count, send nothing.")]
TopicPrefixOpt = Annotated[str | None, typer.Option(help="Topic prefix (default: settings).")]
CreateTopicsOpt = Annotated[bool, typer.Option(
    "--create-topics/--no-create-topics", help="Create missing topics first.")]
ConnectRetriesOpt = Annotated[int, typer.Option(help="Kafka connection attempts.")]
ConnectTimeoutOpt = Annotated[float, typer.Option(help="Seconds one connection attempt waits.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]
QuietOpt = Annotated[bool, typer.Option(help="No progress display.")]


@app.command()
def run(
    meters: Annotated[int | None, typer.Option(help="Smart meters (default: settings).")] = None,
    scale: Annotated[float, typer.Option(help="Multiplier of the fleet size.")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Seed (default: settings).")] = None,
    mode: Annotated[str | None, typer.Option(
        help="realtime, accelerated or historical (default: from the other options).")] = None,
    start: Annotated[str | None, typer.Option(help="First event time (ISO, UTC).")] = None,
    end: Annotated[str | None, typer.Option(help="End of the run (ISO, UTC).")] = None,
    duration: Annotated[str | None, typer.Option(help="Run length, e.g. 30m, 6h, 2d.")] = None,
    speedup: Annotated[float, typer.Option(
        help="Simulated seconds per wall second (accelerated mode), e.g. 1440.")] = 1.0,
    rate: Annotated[float | None, typer.Option(help="Cap on messages per second.")] = None,
    meter_interval: Annotated[int, typer.Option(help="Meter interval: 900, 300 or 60 s.")] = 900,
    ess_interval: Annotated[int, typer.Option(help="BMS interval in s (divides 60).")] = 1,
    dga_interval: Annotated[int, typer.Option(help="DGA sample interval in s.")] = 3600,
    devices: Annotated[str | None, typer.Option(
        help=f"Comma list of message families ({','.join(DEVICE_KINDS)}).")] = None,
    fault: Annotated[list[str] | None, typer.Option(
        help="Inject a fault: type\\[:device]\\[@start]\\[/duration]; repeatable.")] = None,
    defects: Annotated[str | None, typer.Option(
        help="Defect rates, e.g. duplicate=0.001,late=0.0005 or all=0.0002.")] = None,
    registry_changes: Annotated[float, typer.Option(
        help="Registry changes per simulated day.")] = 4.0,
    labels_file: Annotated[Path | None, typer.Option(
        help="Also write labels (faults, defects) to this JSON-lines file.")] = None,
    label_topic: Annotated[bool, typer.Option(
        help="Publish labels to the sim.labels topic.")] = True,
    output: Annotated[Path | None, typer.Option(
        help="Write JSON lines to this file instead of Kafka.")] = None,
    dry_run: DryRunOpt = False,
    topic_prefix: TopicPrefixOpt = None,
    create: CreateTopicsOpt = True,
    connect_retries: ConnectRetriesOpt = 5,
    connect_timeout: ConnectTimeoutOpt = 5.0,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Simulate the fleet (meters, SCADA, transformers, ESS, PV, registry) into Kafka."""
    # lazy: the fleet, Kafka client and settings; `--help` needs none
    from infra.kafka_client import KafkaUnavailableError

    # lazy: see above
    from lakehouse.time import format_time_ms

    # lazy: see above
    from mock_devices.clock import Pacer

    # lazy: see above
    from mock_devices.config import ConfigError, FleetConfig

    # lazy: see above
    from mock_devices.defects import DefectConfig

    # lazy: see above
    from mock_devices.faults import parse_fault

    # lazy: see above
    from mock_devices.fleet import Fleet

    # lazy: see above
    from mock_devices.runner import fleet_stream

    settings = _settings()
    try:
        if rate is not None and not rate > 0:
            raise ConfigError(f"--rate must be positive, got {rate}")
        kinds = frozenset(DEVICE_KINDS if devices is None else
                          [d.strip() for d in devices.split(",") if d.strip()])
        config = FleetConfig(
            meters=settings.simulator.meters if meters is None else meters, scale=scale,
            seed=settings.simulator.seed if seed is None else seed,
            meter_interval_s=meter_interval, ess_interval_s=ess_interval,
            dga_interval_s=dga_interval, registry_changes_per_day=registry_changes,
            devices=kinds,
        )
        mode_, start_ms, end_ms = _time_range(mode, start, end, duration, speedup)
        requests = [parse_fault(f) for f in fault or []]
        defect_cfg = DefectConfig.parse(defects or "", seed=config.seed)

        fleet = Fleet(config, start_ms, end_ms, requests)
        pacer = Pacer(mode_, fleet.start_ms, speedup)
        prefix = settings.kafka.topic_prefix if topic_prefix is None else topic_prefix
        sink = _sink(output, dry_run, settings, prefix, connect_retries, create,
                     connect_timeout)
    except ConfigError as e:
        raise _fail(str(e)) from None
    except KafkaUnavailableError as e:
        raise _fail(str(e), 1) from None
    topo = fleet.topology.summary()
    if not quiet:
        err.print(f"fleet: {', '.join(f'{v:,} {k}' for k, v in topo.items())}; "
                  f"{len(fleet.faults)} fault(s); seed {config.seed}; "
                  f"{format_time_ms(fleet.start_ms)} → "
                  f"{format_time_ms(end_ms) if end_ms else 'until stopped'}")
    report = _drive(fleet_stream(fleet, defect_cfg), sink, pacer, fleet.start_ms, end_ms, rate,
                    labels_file, label_topic, quiet)
    _finish(report, as_json)


@app.command()
def replay(
    path: Annotated[Path | None, typer.Option(
        help="UCI household power file (semicolon CSV); default: the bundled sample.")] = None,
    meters: Annotated[int, typer.Option(help="Virtual meters fed from the series.")] = 1,
    seed: Annotated[int | None, typer.Option(help="Seed (default: settings).")] = None,
    noise: Annotated[float, typer.Option(help="Relative noise added per meter.")] = 0.02,
    start: Annotated[str | None, typer.Option(
        help="Shift the series to start here (ISO, UTC).")] = None,
    mode: Annotated[str, typer.Option(help="historical or accelerated.")] = "historical",
    speedup: Annotated[float, typer.Option(help="Speed-up in accelerated mode.")] = 60.0,
    rate: Annotated[float | None, typer.Option(help="Cap on messages per second.")] = None,
    max_rows: Annotated[int | None, typer.Option(help="Read at most this many rows.")] = None,
    output: Annotated[Path | None, typer.Option(help="JSON lines instead of Kafka.")] = None,
    dry_run: DryRunOpt = False,
    topic_prefix: TopicPrefixOpt = None,
    create: CreateTopicsOpt = True,
    connect_retries: ConnectRetriesOpt = 5,
    connect_timeout: ConnectTimeoutOpt = 5.0,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Replay a public 1-minute household series as meter telemetry."""
    # lazy: the fleet, Kafka client and settings; `--help` needs none
    from infra.kafka_client import KafkaUnavailableError

    # lazy: see above
    from lakehouse.time import MINUTE_MS

    # lazy: see above
    from mock_devices.clock import Pacer

    # lazy: see above
    from mock_devices.config import ConfigError, parse_time_ms

    # lazy: see above
    from mock_devices.replay import SAMPLE_PATH, ReplayConfig, load_uci, replay_records

    path = path or SAMPLE_PATH
    settings = _settings()
    try:
        if mode not in ("historical", "accelerated"):
            raise ConfigError("replay --mode must be historical or accelerated")
        if rate is not None and not rate > 0:
            raise ConfigError(f"--rate must be positive, got {rate}")
        if max_rows is not None and max_rows < 1:
            raise ConfigError("--max-rows must be at least 1")
        cfg = ReplayConfig(meters=meters, seed=settings.simulator.seed if seed is None else seed,
                           noise=noise, start_ms=parse_time_ms(start) if start else None)
        df = load_uci(path, max_rows)
        if df.empty:
            raise ConfigError(f"{path} has no rows")
        first = int(df["ts_ms"].iloc[0]) if cfg.start_ms is None else cfg.start_ms
        last = first + int(df["ts_ms"].iloc[-1] - df["ts_ms"].iloc[0]) + MINUTE_MS
        pacer = Pacer(mode, first, speedup)
        prefix = settings.kafka.topic_prefix if topic_prefix is None else topic_prefix
        sink = _sink(output, dry_run, settings, prefix, connect_retries, create,
                     connect_timeout)
    except ConfigError as e:
        raise _fail(str(e)) from None
    except KafkaUnavailableError as e:
        raise _fail(str(e), 1) from None
    report = _drive(replay_records(df, cfg), sink, pacer, first, last, rate, None, False, quiet)
    _finish(report, as_json)


@app.command()
def catalogue() -> None:
    """List the injectable faults and data defects."""
    # lazy: the fleet, Kafka client and settings; `--help` needs none
    from mock_devices.defects import DEFECT_TYPES

    # lazy: see above
    from mock_devices.faults import CATALOGUE

    table = Table(title="Faults")
    for col in ("fault", "device", "topic", "default", "what"):
        table.add_column(col)
    for k in CATALOGUE.values():
        table.add_row(k.name, k.device_type, k.topic, f"{k.default_duration_ms // 60000} min",
                      k.description)
    out.print(table)
    out.print("Defects: " + ", ".join(DEFECT_TYPES))


@app.command()
def topology(
    meters: Annotated[int | None, typer.Option(help="Smart meters (default: settings).")] = None,
    scale: Annotated[float, typer.Option(help="Multiplier of the fleet size.")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Seed (default: settings).")] = None,
) -> None:
    """Print the device counts of the topology a seed generates."""
    # lazy: the fleet, Kafka client and settings; `--help` needs none
    from mock_devices.config import ConfigError, FleetConfig

    # lazy: see above
    from mock_devices.topology import build_topology

    settings = _settings()
    try:
        cfg = FleetConfig(meters=settings.simulator.meters if meters is None else meters,
                          scale=scale, seed=settings.simulator.seed if seed is None else seed)
    except ConfigError as e:
        raise _fail(str(e)) from None
    topo = build_topology(cfg)
    table = Table(title=f"Topology (seed {cfg.seed})")
    table.add_column("devices")
    table.add_column("count", justify="right")
    for k, v in topo.summary().items():
        table.add_row(k, f"{v:,}")
    out.print(table)


@app.command()
def images(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write (images, descriptions.csv).")],
    count: Annotated[int, typer.Option(help="Number of images.")] = 200,
    set_: Annotated[str, typer.Option("--set", help="balanced (half defective) or "
                                      "imbalanced (9 % defective).")] = "balanced",
    seed: Annotated[int, typer.Option(help="Seed; the same seed writes the same files.")] = 0,
    archive: Annotated[str | None, typer.Option(
        help="Also pack the folder as zip or tar.gz beside it.")] = None,
    infrared_share: Annotated[float, typer.Option(help="Share of infrared views.")] = 0.2,
    jpeg_share: Annotated[float, typer.Option(help="Share written as JPEG.")] = 0.15,
    min_size: Annotated[int, typer.Option(help="Smallest long side (px).")] = 96,
    max_size: Annotated[int, typer.Option(help="Largest long side (px).")] = 320,
    days: Annotated[int, typer.Option(help="Capture period before today (days).")] = 14,
    workers: Annotated[int, typer.Option(help="Processes drawing in parallel.")] = 1,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Draw labelled substation equipment images (visible and infrared) for an import."""
    # lazy: the image generator (numpy, Pillow); `--help` needs none
    from mock_devices.images import ARCHIVES, SETS, archive_batch, generate_batch

    if set_ not in SETS:
        raise _fail(f"unknown --set {set_!r}; choose from {', '.join(SETS)}")
    if archive is not None and archive not in ARCHIVES:
        raise _fail(f"unknown --archive {archive!r}; choose from {', '.join(ARCHIVES)}")
    if out_dir.exists() and not out_dir.is_dir():
        raise _fail(f"{out_dir} exists and is not a folder")
    started = time.perf_counter()
    with Progress(
        SpinnerColumn(), TextColumn("images"), BarColumn(),
        TextColumn("{task.completed:>7,}/{task.total:,}"), TimeElapsedColumn(),
        console=err, disable=quiet,
    ) as prog:
        task = prog.add_task("images", total=count)
        try:
            desc = generate_batch(
                out_dir, count, kind=set_, seed=seed, infrared_share=infrared_share,
                jpeg_share=jpeg_share, size=(min_size, max_size), days=days, workers=workers,
                on_progress=lambda done, _total: prog.update(task, completed=done))
        except ValueError as e:
            raise _fail(str(e)) from None
    packed = archive_batch(out_dir, archive) if archive else None
    seconds = time.perf_counter() - started
    with desc.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    counts = Counter((r["label"], r["camera"]) for r in rows)
    size_mb = sum((out_dir / r["file"]).stat().st_size for r in rows) / 1e6
    if as_json:
        out.print_json(json.dumps({
            "descriptions": str(desc), "archive": str(packed) if packed else None,
            "images": len(rows), "seconds": round(seconds, 2), "megabytes": round(size_mb, 2),
            "counts": {f"{lab}/{cam}": n for (lab, cam), n in sorted(counts.items())}}))
        return
    table = Table(title=f"{len(rows):,} images ({set_}, seed {seed}) in {out_dir}")
    table.add_column("label")
    for cam in ("visible", "infrared"):
        table.add_column(cam, justify="right")
    for lab in sorted({lab for lab, _ in counts}):
        table.add_row(lab, *(f"{counts.get((lab, cam), 0):,}" for cam in ("visible", "infrared")))
    out.print(table)
    out.print(f"{len(rows):,} images, {size_mb:.1f} MB in {seconds:.1f} s = "
              f"[bold]{len(rows) / seconds:,.0f} images/s[/]; descriptions: {desc}"
              + (f"; archive: {packed}" if packed else ""))


@app.command("image-examples")
def image_examples(
    path: Annotated[Path, typer.Argument(help="PNG file to write.")] = Path(
        "docs/images/generated_examples.png"),
    seed: Annotated[int, typer.Option(help="Seed of the scenes.")] = 2,
    cell: Annotated[int, typer.Option(help="Width of one example (px).")] = 144,
) -> None:
    """Draw a contact sheet: each component normal and with each of its defects."""
    # lazy: the image generator (numpy, Pillow); `--help` needs none
    from mock_devices.images import example_sheet

    if not 64 <= cell <= 512:
        raise _fail(f"--cell must be within 64..512, got {cell}")
    path.parent.mkdir(parents=True, exist_ok=True)
    example_sheet(seed, cell).save(path, optimize=True)
    out.print(f"wrote {path} ({path.stat().st_size / 1000:.0f} kB)")
