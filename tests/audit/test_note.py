"""Signed notes and checkpoints: the Go sumdb/note vector byte for byte, and every malformed note refused."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from audit import note
from audit.note import Checkpoint, NoteError
from tests.conftest import TESTDATA

VECTOR = json.loads((TESTDATA / "rfc9162" / "reference.json").read_text())["signed_note"]
SKEY, VKEY = note.generate_key("kalpi.test/log")
SIGNER, VERIFIER = note.Signer.from_key(SKEY), note.Verifier.from_key(VKEY)
ROOT = hashlib.sha256(b"a root").digest()


def test_it_signs_the_vector_text_exactly_as_go_does():
    signed = note.sign(VECTOR["text"], note.Signer.from_key(VECTOR["signer_key"]))
    assert signed == VECTOR["text"] + "\n\u2014 PeterNeumann " + VECTOR["signature_b64"] + "\n"


def test_the_vector_key_ids_are_the_hash_of_name_and_key():
    signer, verifier = note.Signer.from_key(VECTOR["signer_key"]), note.Verifier.from_key(VECTOR["verifier_key"])
    public_key = base64.b64decode(VECTOR["verifier_key"].split("+", 2)[2])[1:]
    computed = hashlib.sha256(b"PeterNeumann\n\x01" + public_key).digest()[:4]
    assert signer.key_id == verifier.key_id == note.key_id("PeterNeumann", public_key) == computed
    assert VECTOR["signer_key"].split("+")[3] == VECTOR["verifier_key"].split("+")[1] == computed.hex()
    assert signer.verifier_key == VECTOR["verifier_key"]
    assert base64.b64decode(VECTOR["signature_b64"])[:4] == computed


def test_it_opens_the_vector_note_with_the_vector_verifier():
    signed = VECTOR["text"] + "\n\u2014 PeterNeumann " + VECTOR["signature_b64"] + "\n"
    assert note.open_note(signed, [note.Verifier.from_key(VECTOR["verifier_key"])]) == VECTOR["text"]


def test_a_generated_key_signs_and_verifies():
    assert SKEY.startswith("PRIVATE+KEY+kalpi.test/log+") and SIGNER.verifier_key == VKEY
    assert note.open_note(note.sign("hello\nworld\n", SIGNER), [VERIFIER]) == "hello\nworld\n"


def test_it_accepts_a_note_that_also_carries_a_signature_by_an_unknown_key():
    other, _ = note.generate_key("witness")
    cosigned = note.sign("text\n", SIGNER) + note.sign("text\n", note.Signer.from_key(other)).split("\n\n")[1]
    assert note.open_note(cosigned, [VERIFIER]) == "text\n"


def tampered_signature(signed: str) -> str:
    head, line = signed.rsplit("\n\u2014 ", 1)
    name, blob = line.rstrip("\n").split(" ")
    raw = bytearray(base64.b64decode(blob))
    raw[10] ^= 1
    return f"{head}\n\u2014 {name} {base64.b64encode(raw).decode()}\n"


@pytest.mark.parametrize(
    ("signed", "message"),
    [
        (note.sign("text\n", SIGNER).replace("text", "test"), "does not verify"),
        (tampered_signature(note.sign("text\n", SIGNER)), "does not verify"),
        (note.sign("text\n", note.Signer.from_key(note.generate_key("kalpi.test/log")[0])), "no signature by a known"),
        ("text\n", "no signature block"),
        ("text\n\n", "signature block is empty"),
        (note.sign("text\n", SIGNER).rstrip("\n"), "must end with a newline"),
        (note.sign("text\n", SIGNER).replace("\u2014", "-"), "must start with an em dash"),
        (note.sign("text\n", SIGNER).replace("\u2014 kalpi.test/log ", "\u2014 kalpi.test/log  "), "not valid base64"),
        (note.sign("text\n", SIGNER).replace("text", "te\tt"), "control character"),
        ("text\n\n\u2014 kalpi.test/log AAAA\n", "too short"),
        ("text\n\n\u2014 kalpi.test/log\n", "too short"),
    ],
)
def test_it_refuses_a_note_without_a_good_signature(signed, message):
    with pytest.raises(NoteError, match=message):
        note.open_note(signed, [VERIFIER])


def test_it_signs_only_text_ending_in_a_newline():
    with pytest.raises(NoteError, match="end with a newline"):
        note.sign("text", SIGNER)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (VKEY.replace("kalpi.test/log", "kalpi.other"), "does not match its name and key"),
        ("kalpi.test/log+zzzzzzzz+AAAA", "verifier key reads"),
        ("kalpi.test/log+" + VKEY.split("+")[1], "verifier key reads"),
        (VKEY.split("+", 2)[0] + "+" + VKEY.split("+", 2)[1] + "+!!!", "not valid base64"),
        (
            "name+00000000+" + base64.b64encode(b"\x02" + bytes(32)).decode(),
            "not an Ed25519 key",
        ),
        ("name+00000000+" + base64.b64encode(b"\x01" + bytes(31)).decode(), "32 bytes, not 31"),
        ("na me+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(), "bad key name"),
    ],
)
def test_it_refuses_a_bad_verifier_key(key, message):
    with pytest.raises(NoteError, match=message):
        note.Verifier.from_key(key)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (SKEY.replace("PRIVATE+KEY", "PUBLIC+KEY"), "signer key reads"),
        (SKEY.replace("kalpi.test/log", "kalpi.other"), "does not match its name and key"),
        ("PRIVATE+KEY+name+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(), "does not match"),
        ("PRIVATE+KEY+name+00000000+" + base64.b64encode(b"\x01" + bytes(16)).decode(), "32 bytes, not 16"),
    ],
)
def test_it_refuses_a_bad_signer_key_without_echoing_it(key, message):
    with pytest.raises(NoteError, match=message) as caught:
        note.Signer.from_key(key)
    # The key material is everything after PRIVATE+KEY+<name>+<id>+ (base64 may itself hold "+").
    assert key.split("+", 4)[-1] not in str(caught.value)


def test_it_refuses_a_key_name_with_spaces_or_plus():
    for name in ("", "a b", "a+b", "a\tb"):
        with pytest.raises(NoteError, match="bad key name"):
            note.generate_key(name)


# Checkpoints


def test_it_formats_a_checkpoint_as_origin_size_and_base64_root():
    assert note.format_checkpoint("kalpi.example.org/log", 1234, ROOT) == (
        f"kalpi.example.org/log\n1234\n{base64.b64encode(ROOT).decode()}\n"
    )


def test_a_signed_checkpoint_opens_and_parses_back():
    body = note.format_checkpoint("kalpi.example.org/log", 0, ROOT)
    assert note.parse_checkpoint(note.open_note(note.sign(body, SIGNER), [VERIFIER])) == Checkpoint(
        "kalpi.example.org/log", 0, ROOT
    )


def test_it_ignores_extension_lines_after_the_root():
    body = note.format_checkpoint("origin", 5, ROOT) + "extension one\nextension two\n"
    assert note.parse_checkpoint(body) == Checkpoint("origin", 5, ROOT)


B64_ROOT = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (f"origin\n5\n{B64_ROOT}", "ends with a newline"),
        ("origin\n5\n", "an origin line, a tree size line and a root line"),
        (f"\n5\n{B64_ROOT}\n", "origin line is empty"),
        (f"origin\n05\n{B64_ROOT}\n", "bad tree size '05'"),
        (f"origin\n-5\n{B64_ROOT}\n", "bad tree size '-5'"),
        (f"origin\n+5\n{B64_ROOT}\n", "bad tree size"),
        (f"origin\n 5\n{B64_ROOT}\n", "bad tree size"),
        (f"origin\n{2**63}\n{B64_ROOT}\n", "bad tree size"),
        (f"origin\n5\n{B64_ROOT[:-1]}\n", "not valid base64"),
        (f"origin\n5\n{base64.b64encode(ROOT[:31]).decode()}\n", "32 bytes"),
        (f"origin\n5\n{base64.b64encode(ROOT).decode().rstrip('=')}\n", "not valid base64"),
        (f"origin\n5\n{B64_ROOT}\n\nextension\n", "no empty lines"),
    ],
)
def test_it_refuses_a_malformed_checkpoint(body, message):
    with pytest.raises(NoteError, match=message):
        note.parse_checkpoint(body)


@pytest.mark.parametrize(
    ("origin", "size", "root"), [("", 1, ROOT), ("two\nlines", 1, ROOT), ("o", -1, ROOT), ("o", 1, ROOT[:16])]
)
def test_it_refuses_to_format_a_bad_checkpoint(origin, size, root):
    with pytest.raises(NoteError):
        note.format_checkpoint(origin, size, root)
