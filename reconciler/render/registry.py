"""Every report in every format, behind one signature: ``render(report, fmt, data, options)``.

A command picks its renderer by the pair (report, format) instead of an if/elif of its own, so
a new format is one registration here and every command that shows that report gains it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from reconciler.ci import CiRun
from reconciler.engine.drift import DriftReport
from reconciler.engine.plan import Plan, PlanSet
from reconciler.render import drift_json, drift_markdown, drift_text, markdown, text
from reconciler.render import json as plan_json

FORMATS = ("text", "markdown", "json")


@dataclass(frozen=True)
class RenderOptions:
    """How to render: colour applies to text on a terminal only; ``ci`` (the commit and CI run)
    ends Markdown documents."""

    color: bool = False
    ci: CiRun | None = None


# A renderer returns the text whole, or in pieces (an iterator of str) when the document can be
# long: :func:`render_chunks` writes pieces as they come, :func:`render` joins them.
Renderer = Callable[[Any, RenderOptions], str | Iterator[str]]
RENDERERS: dict[tuple[str, str], Renderer] = {}


def register(report: str, fmt: str) -> Callable[[Renderer], Renderer]:
    def add(renderer: Renderer) -> Renderer:
        RENDERERS[(report, fmt)] = renderer
        return renderer

    return add


def render(report: str, fmt: str, data: Any, options: RenderOptions | None = None) -> str:
    """``data`` (the ``report``'s data) in ``fmt``; an unknown pair is a programming error."""
    return "".join(render_chunks(report, fmt, data, options))


def render_chunks(
    report: str, fmt: str, data: Any, options: RenderOptions | None = None
) -> Iterator[str]:
    """:func:`render` in pieces, for writing a long document without holding it whole."""
    try:
        renderer = RENDERERS[(report, fmt)]
    except KeyError:
        raise ValueError(f"no {fmt} renderer for the {report} report") from None
    out = renderer(data, options or RenderOptions())
    if isinstance(out, str):
        yield out
    else:
        yield from out


@register("plan", "text")
def _plan_text(plan: Plan | PlanSet, options: RenderOptions) -> str:
    return text.render(plan, color=options.color)


@register("plan", "markdown")
def _plan_markdown(plan: Plan | PlanSet, options: RenderOptions) -> str:
    return markdown.render(plan, ci=options.ci)


@register("plan", "json")
def _plan_json(plan: Plan | PlanSet, options: RenderOptions) -> Iterator[str]:
    return plan_json.chunks(plan)


@register("drift", "text")
def _drift_text(report: DriftReport, options: RenderOptions) -> str:
    return drift_text.render(report, color=options.color)


@register("drift", "markdown")
def _drift_markdown(report: DriftReport, options: RenderOptions) -> str:
    return drift_markdown.render(report, ci=options.ci)


@register("drift", "json")
def _drift_json(report: DriftReport, options: RenderOptions) -> str:
    return drift_json.render(report)
