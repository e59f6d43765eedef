"""The script a team writes without reconciler, as the benchmark's baseline.

It uses the official SDK (``huaweicloudsdkmetastudio``) the obvious way: read every manifest,
call ``show_asset`` once per manifest from ten threads, paced to the ShowAsset limit (20/s in
cn-north-4) so that the service does not answer 429, and compare the declared fields with the
answer.  It prints how many assets differ.  The comparison is the one such a script would make
(declared top-level fields, the declared keys of an extra-meta block, ``system_properties`` as a
key/value map); it knows nothing of read-only or write-only fields, set-like lists or the PUT
body, and it changes nothing.

    python -m bench.baseline MANIFEST_DIR --endpoint URL --project-id ID [--rate 20] [--threads 10]

Credentials come from HUAWEICLOUD_SDK_AK / HUAWEICLOUD_SDK_SK, as for the SDK's own examples.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml


class Pacer:
    """Evenly spaced calls across threads: one every ``1/rate`` seconds."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_at = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            at = max(now, self.next_at)
            self.next_at = at + self.interval
        if at > now:
            time.sleep(at - now)


def load(directory: Path) -> list[dict[str, Any]]:
    docs = []
    for path in sorted(directory.rglob("*.yaml")):
        with path.open(encoding="utf-8") as fh:
            docs.append(yaml.safe_load(fh))
    return docs


def differs(spec: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """Whether a declared field differs from the live asset (the script's own comparison)."""
    for key, want in spec.items():
        have = live.get(key)
        if key == "system_properties":
            have = {p.get("key"): p.get("value") for p in have or ()}
            if any(have.get(k) != v for k, v in want.items()):
                return True
        elif key == "asset_extra_meta":
            for block, fields in want.items():
                live_block = (have or {}).get(block) or {}
                if any(live_block.get(k) != v for k, v in fields.items()):
                    return True
        elif have != want:
            return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("manifests", type=Path)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--project-id", required=True)
    parser.add_argument("--rate", type=float, default=20.0, help="ShowAsset calls per second")
    parser.add_argument("--threads", type=int, default=10)
    args = parser.parse_args(argv)

    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
    from huaweicloudsdkmetastudio.v1 import MetaStudioClient, ShowAssetRequest

    credentials = BasicCredentials(
        os.environ["HUAWEICLOUD_SDK_AK"], os.environ["HUAWEICLOUD_SDK_SK"], args.project_id
    )
    local = threading.local()

    def client() -> Any:
        if not hasattr(local, "client"):
            local.client = (
                MetaStudioClient.new_builder()
                .with_credentials(credentials)
                .with_endpoints([args.endpoint])
                .build()
            )
        return local.client

    pacer = Pacer(args.rate)

    def check(doc: dict[str, Any]) -> str:
        asset_id = doc["metadata"]["asset_id"]
        pacer.wait()
        try:
            live = client().show_asset(ShowAssetRequest(asset_id=asset_id)).to_dict()
        except ClientRequestException as exc:
            print(f"{asset_id}: {exc.status_code} {exc.error_code}", file=sys.stderr)
            return "error"
        return "changed" if differs(doc.get("spec") or {}, live) else "same"

    docs = load(args.manifests)
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        results = list(pool.map(check, docs))
    print(f"checked: {len(results)}")
    print(f"changed: {results.count('changed')}")
    print(f"errors: {results.count('error')}")
    return 1 if "error" in results else 0


if __name__ == "__main__":
    sys.exit(main())
