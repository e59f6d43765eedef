"""validate refuses two items of an ordered list with the same identity: the engine matches
items with live by it (docs/field-semantics.md, "Ordered lists of objects")."""

from __future__ import annotations

import pytest

from reconciler.manifest.loader import problems_in_text

HEAD = "apiVersion: reconciler.metastudio/v1\nkind: DigitalAsset\nmetadata:\n  asset_id: a-1\n"


@pytest.mark.parametrize(
    ("block", "key", "identity", "item"),
    [
        ("ppt_meta", "pages", "file_id", "{{page_no: {n}, file_id: f1}}"),
        (
            "human_model_2d_meta",
            "action_tag_map",
            "action_name_en",
            "{{action_name_zh: a{n}, action_name_en: wave}}",
        ),
        (
            "material_meta",
            "components",
            "component_name",
            "{{component_name: coat, component_type: CLOTHES, component_desc: d{n}}}",
        ),
    ],
)
def test_a_repeated_identity_is_refused_where_it_repeats(
    block: str, key: str, identity: str, item: str
) -> None:
    text = (
        f"{HEAD}spec:\n  asset_extra_meta:\n    {block}:\n      {key}:\n"
        f"        - {item.format(n=1)}\n        - {item.format(n=2)}\n"
    )
    [problem] = problems_in_text(text, "m.yaml")
    assert problem.line == 10
    assert problem.path == f"spec.asset_extra_meta.{block}.{key}[1].{identity}"
    assert problem.message.startswith(f"{key}[0] has the same {identity} ")
    assert problem.message.endswith(
        f"{identity} tells the items of {key} apart (each keeps its own values), so give each "
        "item its own"
    )


def test_distinct_identities_and_items_without_one_are_valid() -> None:
    text = (
        f"{HEAD}spec:\n  asset_extra_meta:\n    ppt_meta:\n      pages:\n"
        "        - {page_no: 1, file_id: f1}\n        - {page_no: 2, file_id: f2}\n"
        "        - {page_no: 3}\n        - {page_no: 4}\n"
    )
    assert problems_in_text(text, "m.yaml") == []
