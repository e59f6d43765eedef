"""The signer reproduces the official SDK's signatures for the facts file's test vectors."""

from reconciler.api import signing

HEADERS = {
    "Content-Type": "application/json",
    "X-Project-Id": "p1",
    "X-Sdk-Date": "20240101T000000Z",
    "User-Agent": "ua",
    "X-App-UserId": "u",
    "Host": "metastudio.cn-north-4.myhuaweicloud.com",
}
SIGNED = "content-type;host;user-agent;x-app-userid;x-project-id;x-sdk-date"


def test_get_with_repeated_and_encoded_query_matches_sdk() -> None:
    query = [
        ("limit", "10"),
        ("offset", "0"),
        ("asset_id", "b"),
        ("asset_id", "a"),
        ("name", "a b"),
        ("is_movable", "true"),
    ]
    auth = signing.authorization("AK", "SK", "GET", "/v1/p1/digital-assets", query, HEADERS, b"")
    assert auth == (
        f"SDK-HMAC-SHA256 Access=AK, SignedHeaders={SIGNED}, "
        "Signature=9ccd5206ec76aabd8716877dfa230bc360a7e07e2aa54176f938ebbe49a3c07d"
    )
    assert signing.canonical_query(query) == (
        "asset_id=a&asset_id=b&is_movable=true&limit=10&name=a%20b&offset=0"
    )


def test_put_with_body_matches_sdk() -> None:
    body = b'{"asset_name": "x"}'
    auth = signing.authorization("AK", "SK", "PUT", "/v1/p1/digital-assets/abc", [], HEADERS, body)
    assert auth.endswith(
        "Signature=1de759b4aa0561f174f21e1eb2bb9aaa5924a8993ec1c5c71758e7dd355bafeb"
    )


def test_verify_round_trip_and_tamper() -> None:
    body = b'{"asset_name": "x"}'
    auth = signing.authorization("AK", "SK", "PUT", "/v1/p1/digital-assets/abc", [], HEADERS, body)
    access, names, sig = signing.parse_authorization(auth)
    assert access == "AK"
    args = ("PUT", "/v1/p1/digital-assets/abc", [], HEADERS, names)
    assert signing.verify("SK", *args, body, sig)
    assert not signing.verify("SK", *args, b'{"asset_name": "y"}', sig)
    assert not signing.verify("other", *args, body, sig)
