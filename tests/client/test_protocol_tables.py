"""docs/protocol.md, the shared protocol module, the client's exceptions and room.js agree."""

import re
from pathlib import Path

from meshsite_client import errors
from meshsite_client.protocol import CloseCode, ErrorCode

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "protocol.md").read_text()


def test_the_documented_error_table_is_the_code_table():
    documented = {int(code): name for code, name in re.findall(r"^\| (-32\d{3}) \| `([a-z_]+)` \|", DOC, re.M)}
    assert documented == {int(code): code.type_name for code in ErrorCode}


def test_every_error_code_has_its_client_exception():
    by_code = {cls.code_default: cls.type_name for cls in errors._SUBCLASSES}
    assert by_code == {int(code): code.type_name for code in ErrorCode}


def test_every_close_code_is_documented():
    for code in CloseCode:
        if code != CloseCode.NORMAL:
            assert f"{int(code)}" in DOC, code


def test_room_js_carries_the_same_close_codes():
    js = (ROOT / "static" / "meshsite" / "room.js").read_text()
    for name in ("UNAUTHORIZED", "FORBIDDEN", "TOKEN_EXPIRED", "REPLACED"):
        match = re.search(rf"CLOSE_{name} = (\d+)", js)
        assert match is not None and int(match.group(1)) == CloseCode[name], name
