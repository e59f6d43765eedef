"""``reconciler watch``: continuous drift detection with history, metrics and self-heal.

The loop lives in :mod:`reconciler.watch.service`; this module reads the options.
See docs/watch.md.
"""

from __future__ import annotations

import logging
import sys

import click

from reconciler.cli.context import GlobalOptions, pass_options
from reconciler.cli.options import DurationType, parallelism_option
from reconciler.constants import DEFAULT_PATHS


@click.command()
@click.argument("paths", nargs=-1)
@click.option(
    "--interval",
    type=DurationType(minimum=0.1),
    default="5m",
    show_default=True,
    help="Time between the starts of two cycles (30s, 5m, 1h); a little jitter is added.",
)
@click.option(
    "--self-heal",
    is_flag=True,
    help="Apply drifted assets back to their manifests (needs write credentials).",
)
@click.option(
    "--metrics-addr",
    metavar="HOST:PORT",
    help="Serve /metrics (Prometheus) and /healthz here, e.g. 127.0.0.1:9100 or :9100.",
)
@click.option("--once", is_flag=True, help="Run one cycle and exit with drift's exit codes.")
@click.option(
    "--heal-backoff",
    type=DurationType(minimum=0.1),
    default="1m",
    show_default=True,
    help="Wait after an asset's failed heal; doubles with each further failure.",
)
@click.option(
    "--heal-backoff-max",
    type=DurationType(minimum=0.1),
    default="1h",
    show_default=True,
    help="Longest wait between two heal attempts of one asset.",
)
@click.option(
    "--leader-poll",
    type=DurationType(minimum=0.1),
    default="5s",
    show_default=True,
    help="With several replicas on one state: how often a standby claims the leadership of "
    "a project (and the leader confirms it).",
)
@click.option(
    "--resync",
    type=DurationType(minimum=0),
    default="1h",
    show_default=True,
    help="Read every asset of the project at least this often; in between, a cycle reads only "
    "the assets changed since the last one. 0: every cycle reads every asset.",
)
@parallelism_option("At most this many requests in flight, reads and self-heal PUTs together.")
@pass_options
def watch(
    options: GlobalOptions,
    paths: tuple[str, ...],
    interval: float,
    self_heal: bool,
    metrics_addr: str | None,
    once: bool,
    heal_backoff: float,
    heal_backoff_max: float,
    leader_poll: float,
    resync: float,
    parallelism: int,
) -> None:
    """Watch for drift continuously: history, metrics, self-heal.

    Every interval, compare the manifests (PATHS default to ./manifests) with the live project,
    record the drift history, update the metrics and, with --self-heal, apply drifted assets
    back. Runs until SIGTERM or SIGINT (exit 0). With --once: exit 0 in sync, 2 drift, 1 error.
    Replicas sharing one state elect one leader per project, which alone records the history
    and heals; the others stand by and take over when it ends.

    \b
    Examples:
      reconciler watch --interval 5m --metrics-addr 127.0.0.1:9100
      reconciler watch --once --self-heal
    """
    from reconciler.watch.service import Watcher, WatchSettings

    if options.verbose == 0:
        # The cycle lines are this command's output.
        logging.getLogger("reconciler.watch").setLevel(logging.INFO)
    settings = WatchSettings(
        paths=paths or DEFAULT_PATHS,
        interval=interval,
        self_heal=self_heal,
        metrics_addr=metrics_addr,
        once=once,
        heal_backoff=heal_backoff,
        heal_backoff_max=heal_backoff_max,
        parallelism=parallelism,
        leader_poll=leader_poll,
        resync=resync,
    )
    sys.exit(Watcher(options, settings).run())
