"""Ordered lists of objects keep each item's values with that item (design.md 3.12).

The manifest manages the order of ``ppt_meta.pages``, ``human_model_2d_meta.action_tag_map``
and ``material_meta.components`` but leaves some keys of their items out.  Those keys are filled
from the live item with the same identity (``file_id``, ``action_name_en``, ``component_name``),
never from the live item at the same position, and the plan shows them as kept from live.
Every test runs ``reconciler`` as a real process against the emulator on a loopback socket and
asserts the PUT bodies from the emulator's request log and the live state in its store.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator.samples import asset_id as aid
from reconciler.emulator.testing import run_emulator
from tests.e2e.cli_runner import Cli

pytestmark = pytest.mark.e2e

PAGES = [
    {"page_no": 1, "file_id": "pg1", "page_content": "text 1"},
    {"page_no": 2, "file_id": "pg2", "page_content": "text 2"},
]
ACTIONS = [
    {"action_name_zh": "挥手", "action_name_en": "wave", "file_name": "wave.mp4", "tag": "greet"},
    {"action_name_zh": "点头", "action_name_en": "nod", "file_name": "nod.mp4", "tag": "agree"},
]
COMPONENTS = [
    {"component_name": "coat", "component_type": "CLOTHES", "component_desc": "red coat"},
    {"component_name": "boots", "component_type": "SHOES", "component_desc": "black boots"},
]


def deck(i: int, pages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "asset_id": aid(i),
        "asset_name": f"Deck {i}",
        "asset_type": "PPT",
        "asset_state": "ACTIVED",
        "asset_extra_meta": {
            "ppt_meta": {
                "auto_analysis": False,
                "ppt_analysis_status": "SUCCEEDED",  # read-only: never sent back
                "page_count": len(pages),
                "pages": pages,
            }
        },
    }


def avatar(i: int) -> dict[str, Any]:
    return {
        "asset_id": aid(i),
        "asset_name": f"Avatar {i}",
        "asset_type": "HUMAN_MODEL_2D",
        "asset_state": "ACTIVED",
        "asset_extra_meta": {
            "human_model_2d_meta": {"support_live": True, "action_tag_map": ACTIONS}
        },
    }


def material(i: int) -> dict[str, Any]:
    return {
        "asset_id": aid(i),
        "asset_name": f"Material {i}",
        "asset_type": "MATERIAL",
        "asset_state": "ACTIVED",
        "asset_extra_meta": {"material_meta": {"components": COMPONENTS}},
    }


def manifest(i: int, spec: str) -> str:
    return (
        "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\n"
        f"metadata:\n  asset_id: {aid(i)}\nspec:\n" + textwrap.indent(textwrap.dedent(spec), "  ")
    )


def write(cli: Cli, *docs: str) -> None:
    directory = cli.cwd / "manifests"
    directory.mkdir(exist_ok=True)
    (directory / "assets.yaml").write_text("---\n".join(docs), encoding="utf-8")


def stored_block(cli: Cli, i: int, block: str) -> dict[str, Any]:
    stored = cli.emu.store.get(aid(i))
    assert stored is not None
    value: dict[str, Any] = stored["asset_extra_meta"][block]
    return value


SWAPPED_PAGES = """\
asset_extra_meta:
  ppt_meta:
    pages:
      - {page_no: 1, file_id: pg2}
      - {page_no: 2, file_id: pg1}
"""


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    with run_emulator([deck(1, PAGES), avatar(2), material(3)]) as emu:
        yield Cli(emu, tmp_path)


def test_swapped_pages_keep_their_own_page_content(cli: Cli) -> None:
    write(cli, manifest(1, SWAPPED_PAGES))
    planned = cli.run("plan")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert (
        "              ~ pages = [\n"
        "                  ~ { # moved from [1]\n"
        "                      ~ page_no      = 2 -> 1\n"
        '                        file_id      = "pg2"\n'
        '                        page_content = "text 2"  # kept from live\n'
        "                    },\n"
        "                  ~ { # moved from [0]\n"
        "                      ~ page_no      = 1 -> 2\n"
        '                        file_id      = "pg1"\n'
        '                        page_content = "text 1"  # kept from live\n'
        "                    },\n"
        "                ]\n"
    ) in planned.stdout

    result = cli.run("apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Apply complete! 1 changed, 0 failed." in result.stdout
    assert cli.puts() == [
        (
            aid(1),
            {
                "asset_extra_meta": {
                    "ppt_meta": {
                        "auto_analysis": False,
                        "page_count": 2,
                        "pages": [
                            {"page_no": 1, "file_id": "pg2", "page_content": "text 2"},
                            {"page_no": 2, "file_id": "pg1", "page_content": "text 1"},
                        ],
                    }
                }
            },
        )
    ]
    assert stored_block(cli, 1, "ppt_meta")["pages"] == [
        {"page_no": 1, "file_id": "pg2", "page_content": "text 2"},
        {"page_no": 2, "file_id": "pg1", "page_content": "text 1"},
    ]
    again = cli.run("plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout
    assert "No changes." in again.stdout


def test_the_json_and_markdown_plans_show_the_kept_values(cli: Cli) -> None:
    write(cli, manifest(1, SWAPPED_PAGES))
    planned = cli.run("plan", "--format", "json")
    assert planned.returncode == 0, planned.stderr
    [asset] = json.loads(planned.stdout)["targets"][0]["assets"]
    [block] = asset["changes"]
    [pages] = block["children"]
    assert pages["path"] == "asset_extra_meta.ppt_meta.pages"
    assert pages["items"] == [
        {
            "before": PAGES[1],
            "after": {"page_no": 1, "file_id": "pg2", "page_content": "text 2"},
            "live_index": 1,
            "changed": ["page_no"],
            "kept_from_live": ["page_content"],
        },
        {
            "before": PAGES[0],
            "after": {"page_no": 2, "file_id": "pg1", "page_content": "text 1"},
            "live_index": 0,
            "changed": ["page_no"],
            "kept_from_live": ["page_content"],
        },
    ]
    # What the items show is what the body sends.
    sent = asset["body"]["asset_extra_meta"]["ppt_meta"]["pages"]
    assert sent == [item["after"] for item in pages["items"]]

    markdown = cli.run("plan", "--format", "markdown")
    assert markdown.returncode == 0, markdown.stderr
    assert '    page_content = "text 2"  # kept from live\n' in markdown.stdout
    assert "!                       page_no      = 2 -> 1\n" in markdown.stdout


def test_reordered_actions_keep_their_own_files_and_tags(cli: Cli) -> None:
    write(
        cli,
        manifest(
            2,
            """\
            asset_extra_meta:
              human_model_2d_meta:
                action_tag_map:
                  - {action_name_zh: 点头, action_name_en: nod}
                  - {action_name_zh: 挥手, action_name_en: wave, tag: hello}
            """,
        ),
    )
    planned = cli.run("plan")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert (
        "                  ~ { # moved from [1]\n"
        '                        action_name_zh = "点头"\n'
        '                        action_name_en = "nod"\n'
        '                        file_name      = "nod.mp4"  # kept from live\n'
        '                        tag            = "agree"  # kept from live\n'
        "                    },\n"
        "                  ~ { # moved from [0]\n"
        '                        action_name_zh = "挥手"\n'
        '                        action_name_en = "wave"\n'
        '                        file_name      = "wave.mp4"  # kept from live\n'
        '                      ~ tag            = "greet" -> "hello"\n'
        "                    },\n"
    ) in planned.stdout

    result = cli.run("apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    expected = [
        {"action_name_zh": "点头", "action_name_en": "nod", "file_name": "nod.mp4", "tag": "agree"},
        {
            "action_name_zh": "挥手",
            "action_name_en": "wave",
            "file_name": "wave.mp4",
            "tag": "hello",
        },
    ]
    assert cli.puts() == [
        (
            aid(2),
            {
                "asset_extra_meta": {
                    "human_model_2d_meta": {"support_live": True, "action_tag_map": expected}
                }
            },
        )
    ]
    assert stored_block(cli, 2, "human_model_2d_meta")["action_tag_map"] == expected


def test_reordered_components_keep_their_descriptions_and_a_new_one_is_sent_as_written(
    cli: Cli,
) -> None:
    write(
        cli,
        manifest(
            3,
            """\
            asset_extra_meta:
              material_meta:
                components:
                  - {component_name: boots, component_type: SHOES}
                  - {component_name: hat, component_type: HAIR}
            """,
        ),
    )
    planned = cli.run("plan")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert (
        "              ~ components = [\n"
        "                  ~ { # moved from [1]\n"
        '                        component_name = "boots"\n'
        '                        component_type = "SHOES"\n'
        '                        component_desc = "black boots"  # kept from live\n'
        "                    },\n"
        "                  + {\n"
        '                      + component_name = "hat"\n'
        '                      + component_type = "HAIR"\n'
        "                    },\n"
        "                  - {\n"
        '                      - component_name = "coat" -> null\n'
        '                      - component_type = "CLOTHES" -> null\n'
        '                      - component_desc = "red coat" -> null\n'
        "                    },\n"
        "                ]\n"
    ) in planned.stdout

    result = cli.run("apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    expected = [
        {"component_name": "boots", "component_type": "SHOES", "component_desc": "black boots"},
        {"component_name": "hat", "component_type": "HAIR"},
    ]
    assert cli.puts() == [
        (aid(3), {"asset_extra_meta": {"material_meta": {"components": expected}}})
    ]
    assert stored_block(cli, 3, "material_meta") == {"components": expected}


def test_a_page_that_cannot_be_matched_is_refused_and_nothing_is_sent(cli: Cli) -> None:
    write(
        cli,
        manifest(
            1,
            """\
            asset_extra_meta:
              ppt_meta:
                pages:
                  - {page_no: 1, page_content: new text}
                  - {page_no: 2, file_id: pg1}
            """,
        ),
        manifest(3, "asset_name: Material 3 renamed\n"),
    )
    message = (
        "asset_extra_meta.ppt_meta.pages[0] has no file_id, so it cannot be matched with a live "
        "item (live item [1], which no other item names, has file_id that it leaves out): "
        "write its file_id in the manifest"
    )
    planned = cli.run("plan")
    assert planned.returncode == 1, planned.stdout + planned.stderr
    assert f'# asset "Deck 1" ({aid(1)}) cannot be planned: {message}' in planned.stdout
    assert "Plan: 1 to change, 0 unchanged, 1 error." in planned.stdout

    result = cli.run("apply", "--auto-approve")
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stdout
    # The other asset is still applied; the deck gets no PUT and keeps its pages.
    assert cli.puts() == [(aid(3), {"asset_name": "Material 3 renamed"})]
    assert stored_block(cli, 1, "ppt_meta")["pages"] == PAGES


def test_live_items_sharing_an_identity_that_differ_are_refused(tmp_path: Path) -> None:
    twins = [
        {"page_no": 1, "file_id": "pg1", "page_content": "text 1"},
        {"page_no": 2, "file_id": "pg1", "page_content": "text 2"},
    ]
    with run_emulator([deck(1, twins)]) as emu:
        cli = Cli(emu, tmp_path)
        write(cli, manifest(1, SWAPPED_PAGES))
        planned = cli.run("plan")
        assert planned.returncode == 1, planned.stdout + planned.stderr
        assert (
            'live asset_extra_meta.ppt_meta.pages has 2 items with file_id "pg1" (items [0], '
            "[1]) that differ in page_content, so which values to keep is unknown: write "
            "page_content for asset_extra_meta.ppt_meta.pages[1] in the manifest"
        ) in planned.stdout
        result = cli.run("apply", "--auto-approve")
        assert result.returncode == 1, result.stdout + result.stderr
        assert cli.puts() == []


def test_two_manifest_items_with_one_identity_are_refused_before_any_request(cli: Cli) -> None:
    write(
        cli,
        manifest(
            1,
            """\
            asset_extra_meta:
              ppt_meta:
                pages:
                  - {page_no: 1, file_id: pg1}
                  - {page_no: 2, file_id: pg1}
            """,
        ),
    )
    message = (
        "manifests/assets.yaml:10:24: spec.asset_extra_meta.ppt_meta.pages[1].file_id: pages[0] "
        'has the same file_id "pg1": file_id tells the items of pages apart (each keeps its own '
        "values), so give each item its own"
    )
    validated = cli.run("validate")
    assert validated.returncode == 1
    assert message in validated.stderr
    planned = cli.run("plan")
    assert planned.returncode == 1
    assert message in planned.stderr
    assert cli.emu.requests() == []
