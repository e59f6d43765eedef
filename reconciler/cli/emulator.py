"""``reconciler emulator serve``: run the local MetaStudio service in the foreground.

The emulator is imported only once ``serve`` runs and its extra is known to be installed, so
``reconciler emulator --help`` works on a plain install and ``serve`` says what to install.
"""

from __future__ import annotations

import logging
import math
import signal
from pathlib import Path
from typing import Any

import click

from reconciler.cli.extras import require_emulator
from reconciler.cli.global_options import FiniteFloat
from reconciler.logs import register_secret

log = logging.getLogger("reconciler.emulator")


class RateLimitsText(click.ParamType[str]):
    """``list=20,show=20,update=10`` kept as text for the emulator's parser, each rate first
    checked to be a finite number (``update=nan`` is a usage error naming the option)."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        for item in filter(None, (part.strip() for part in text.split(","))):
            rate = item.partition("=")[2].strip()
            try:
                finite = math.isfinite(float(rate))
            except ValueError:
                continue  # not a number at all: the emulator's parser says so
            if not finite:
                self.fail(f"{item!r}: the rate is not a finite number", param, ctx)
        return text


@click.group()
def emulator() -> None:
    """A local MetaStudio digital-asset service.

    For tests, demos and benchmarks: see docs/emulator.md.

    \b
    Example:
      reconciler emulator serve --port 8090 --seed demo
    """


@emulator.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8090, show_default=True, help="Port (0 picks a free one).")
@click.option("--db", type=click.Path(path_type=Path), help="SQLite file (default: in memory).")
@click.option(
    "--seed",
    "seed_file",
    type=click.Path(path_type=Path),
    help="JSON or YAML list of DigitalAssetInfo records to load ('demo' for the demo assets).",
)
@click.option(
    "--latency-ms",
    type=FiniteFloat(min=0),
    default=0.0,
    show_default=True,
    help="Added to every response.",
)
@click.option(
    "--jitter-ms",
    type=FiniteFloat(min=0),
    default=0.0,
    show_default=True,
    help="Random extra latency, up to.",
)
@click.option(
    "--fail-rate",
    type=FiniteFloat(0, 1),
    default=0.0,
    show_default=True,
    help="Share of requests answered 500.",
)
@click.option(
    "--drop-rate",
    type=FiniteFloat(0, 1),
    default=0.0,
    show_default=True,
    help="Share of connections dropped.",
)
@click.option(
    "--rate-limits",
    type=RateLimitsText(),
    default="list=20,show=20,update=10",
    show_default=True,
    help="Requests per second per API; 0 = unlimited.",
)
@click.option(
    "--random-seed",
    type=int,
    help="Seed for injected faults and jitter, so that a faulty run can be reproduced.",
)
@click.option(
    "--list-omit",
    default="",
    metavar="FIELD[,FIELD...]",
    help="Leave these fields (dotted paths) out of list rows, as summary rows would; "
    "show still returns them.",
)
@click.option(
    "--put-answer",
    type=click.Choice(["full", "short", "stale"]),
    default="full",
    show_default=True,
    help="Answer a PUT with the updated asset, the reference example's few top-level fields "
    "(short), or the asset as it was before the update (stale).",
)
@click.option(
    "--edit-on-put",
    multiple=True,
    metavar="[AFTER_ID>]ASSET_ID:PATH=VALUE[,...]",
    help="An out-of-band edit of ASSET_ID made once, right after the first PUT to AFTER_ID "
    "(default: to any other asset). VALUE is JSON, else a string. Repeatable.",
)
@click.option(
    "--put-fault",
    "put_faults",
    multiple=True,
    metavar="[ASSET_ID:]status=N[,times=N][,retry_after=S][,empty=1]",
    help="Answer PUTs (to ASSET_ID, default any) with 429 (with Retry-After) or a 5xx, TIMES "
    "times, before they reach the service; empty=1 sends a 5xx with no body. Repeatable.",
)
@click.option(
    "--lose-put-answer",
    "lost_answers",
    multiple=True,
    metavar="[ASSET_ID:]mode=drop|delay|gateway[,times=N][,seconds=S]",
    help="Apply PUTs (to ASSET_ID, default any), then drop the connection, answer SECONDS late, "
    "or answer 504 with no body, TIMES times. Repeatable.",
)
@click.option(
    "--count-offset",
    type=int,
    default=0,
    show_default=True,
    help="Add N (negative: subtract) to the count of every list answer, never below 0.",
)
@click.option(
    "--ignore-sort-key",
    is_flag=True,
    help="List in the default order (create_time) whatever sort_key asks for, as a service "
    "that does not implement it might; sort_dir still applies.",
)
@click.option(
    "--delete-on-list",
    multiple=True,
    metavar="OFFSET:ASSET_ID",
    help="Delete ASSET_ID once, when the page at OFFSET of the whole project is asked for, "
    "before it is read. Repeatable.",
)
@click.option(
    "--create-on-list",
    multiple=True,
    metavar="OFFSET:JSON",
    help="Create the asset JSON (a record with an asset_id) once, when the page at OFFSET of "
    "the whole project is asked for, before it is read. Repeatable.",
)
@click.option("--record", type=click.Path(path_type=Path), help="Append a JSON line per request.")
@click.option("--ak", help="Accepted access key [env: HUAWEICLOUD_SDK_AK, HW_ACCESS_KEY].")
@click.option("--sk", help="Its secret key [env: HUAWEICLOUD_SDK_SK, HW_SECRET_KEY].")
@click.option(
    "--security-token", help="Required with the AK/SK [env: HUAWEICLOUD_SDK_SECURITY_TOKEN]."
)
@click.option("--token", help="Accepted X-Auth-Token [env: HW_AUTH_TOKEN].")
@click.option("--project-id", "emulated_project", help="Project [env: HUAWEICLOUD_SDK_PROJECT_ID].")
@click.option(
    "--ready-file",
    type=click.Path(path_type=Path),
    help="Write the base URL here once listening (for scripts).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    db: Path | None,
    seed_file: Path | None,
    latency_ms: float,
    jitter_ms: float,
    fail_rate: float,
    drop_rate: float,
    rate_limits: str,
    random_seed: int | None,
    list_omit: str,
    put_answer: str,
    edit_on_put: tuple[str, ...],
    put_faults: tuple[str, ...],
    lost_answers: tuple[str, ...],
    count_offset: int,
    ignore_sort_key: bool,
    delete_on_list: tuple[str, ...],
    create_on_list: tuple[str, ...],
    record: Path | None,
    ak: str | None,
    sk: str | None,
    security_token: str | None,
    token: str | None,
    emulated_project: str | None,
    ready_file: Path | None,
) -> None:
    """Serve list/show/update of digital assets on HOST:PORT until interrupted."""
    require_emulator("emulator serve")
    from reconciler.emulator.app import create_app
    from reconciler.emulator.config import (
        Behaviour,
        EmulatorConfig,
        Faults,
        parse_create_on_list,
        parse_delete_on_list,
        parse_edit_on_put,
        parse_list_omit,
        parse_lost_answer,
        parse_put_fault,
        parse_rate_limits,
    )
    from reconciler.emulator.demo_seed import demo_assets
    from reconciler.emulator.server import bind, serve_forever
    from reconciler.emulator.store import AssetStore, load_seed_file

    for secret in (ak, sk, security_token, token):
        register_secret(secret)
    global_project = getattr(ctx.obj, "project_id", None)
    config = EmulatorConfig.from_env(
        ak=ak,
        sk=sk,
        security_token=security_token,
        token=token,
        project_id=emulated_project or global_project,
        rate_limits=parse_rate_limits(rate_limits),
        faults=Faults(latency_ms, jitter_ms, fail_rate, drop_rate),
        record_path=record,
        random_seed=random_seed,
        behaviour=Behaviour(
            list_omit=parse_list_omit(list_omit),
            put_answer=put_answer,
            edits_on_put=[parse_edit_on_put(item) for item in edit_on_put],
            put_faults=[parse_put_fault(item) for item in put_faults],
            lost_answers=[parse_lost_answer(item) for item in lost_answers],
            count_offset=count_offset,
            ignore_sort_key=ignore_sort_key,
            list_mutations=[
                *(parse_delete_on_list(item) for item in delete_on_list),
                *(parse_create_on_list(item) for item in create_on_list),
            ],
        ),
    )
    store = AssetStore(db)
    if seed_file is not None:
        records = (
            demo_assets(config.project_id)
            if str(seed_file) == "demo"
            else load_seed_file(seed_file)
        )
        count = store.seed(records, config.project_id, source=str(seed_file))
        click.echo(f"Seeded {count} assets from {seed_file}.", err=True)
    sock = bind(host, port)
    actual_port = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    base_url = f"http://{url_host}:{actual_port}"
    auth = [kind for kind, on in (("AK/SK", config.ak), ("token", config.token)) if on]
    click.echo(
        f"MetaStudio emulator on {base_url} (project {config.project_id}, "
        f"{store.count()} assets, auth: {' and '.join(auth)}). Ctrl-C stops it.",
        err=True,
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: the emulator is reachable beyond loopback", host)
    if ready_file is not None:
        ready_file.write_text(base_url + "\n", encoding="utf-8")
    # Ctrl-C and SIGTERM are this command's documented way to stop: uvicorn shuts down
    # gracefully, then raises the signal again, which ends here as a clean exit (0) instead of
    # an interrupted run's "Aborted." and 130.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        serve_forever(create_app(config, store), sock)
    except KeyboardInterrupt:
        click.echo("Emulator stopped.", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        store.close()
