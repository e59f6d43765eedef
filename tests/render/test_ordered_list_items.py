"""A changed ordered list of objects is shown item by item, every value the body sends, the
values kept from live marked (docs/plan.md, docs/field-semantics.md rule 12)."""

from __future__ import annotations

from typing import Any

from reconciler.engine.diff import Desired, diff_asset
from reconciler.engine.plan import AssetPlan, Plan
from reconciler.render import markdown, text

LIVE: dict[str, Any] = {
    "asset_id": "a1",
    "asset_name": "Deck",
    "asset_type": "PPT",
    "asset_state": "ACTIVED",
    "asset_extra_meta": {
        "ppt_meta": {
            "pages": [
                {"page_no": 1, "file_id": "pg1", "page_content": "text 1"},
                {"page_no": 2, "file_id": "pg2", "page_content": "text 2"},
            ]
        }
    },
}


def planned() -> AssetPlan:
    pages = [
        {"page_no": 1, "file_id": "pg1"},
        {"page_no": 2, "file_id": "pg3", "page_content": "x"},
    ]
    return diff_asset(Desired("a1", {"asset_extra_meta": {"ppt_meta": {"pages": pages}}}), LIVE)


LIST_LINES = """\
              ~ pages = [
                    {
                        page_no      = 1
                        file_id      = "pg1"
                        page_content = "text 1"  # kept from live
                    },
                  + {
                      + page_no      = 2
                      + file_id      = "pg3"
                      + page_content = "x"
                    },
                  - {
                      - page_no      = 2 -> null
                      - file_id      = "pg2" -> null
                      - page_content = "text 2" -> null
                    },
                ]
"""


def test_kept_new_and_dropped_items_are_each_shown_whole() -> None:
    assert LIST_LINES in text.render(Plan([planned()]))


def test_an_unchanged_item_has_no_marker_even_in_colour() -> None:
    lines = text.render(Plan([planned()]), color=True).splitlines()
    assert "                    {" in lines
    assert '                        page_content = "text 1"  # kept from live' in lines


def test_the_markdown_plan_shows_the_same_items_as_a_diff() -> None:
    shown = markdown.render(Plan([planned()]))
    assert '                        page_content = "text 1"  # kept from live\n' in shown
    assert '+                       page_content = "x"\n' in shown
    assert '-                       page_content = "text 2" -> null\n' in shown
