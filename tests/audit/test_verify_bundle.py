"""The standalone verifier on exported bundles: a good one passes, and every kind of tampering is named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from audit import merkle, note
from audit.canonical import canonical_bytes
from audit.verify import Problem, verify_bundle, verify_log

MAIN = Path(__file__).resolve().parents[2]
ORIGIN = "kalpi.test/log"
SKEY, VKEY = note.generate_key(ORIGIN)
SIGNER, VERIFIER = note.Signer.from_key(SKEY), note.Verifier.from_key(VKEY)


def make_entries(count: int) -> list[dict]:
    return [
        {
            "id": index + 1,
            "action": "ballot.recorded",
            "actor": "tlv-01",
            "payload": {"station": "tlv-01", "n": index},
            "created_at": f"2011-09-12T07:00:{index % 60:02d}.123456Z",
        }
        for index in range(count)
    ]


def leaves_of(entries: list[dict]) -> list[bytes]:
    return [merkle.leaf_hash(canonical_bytes(entry)) for entry in entries]


def stored(leaves: list[bytes]) -> merkle.NodeGetter:
    store = {(0, index): leaf for index, leaf in enumerate(leaves)}
    appender = merkle.TreeAppender(0, [])
    for leaf in leaves:
        store.update({(node.level, node.index): node.hash for node in appender.append(leaf)})
    return lambda level, index: store[(level, index)]


def signed_checkpoint(size: int, root: bytes, *, origin: str = ORIGIN, signer: note.Signer = SIGNER) -> str:
    return note.sign(note.format_checkpoint(origin, size, root), signer)


def write_bundle(
    directory: Path,
    entries: list[dict],
    sizes: tuple[int, ...] = (3, 7, 10),
    *,
    leaf_hashes: bool = False,
    proofs: bool = False,
) -> Path:
    """A bundle as export_audit writes it, with checkpoints signed at `sizes` (ids 1, 2, ...)."""
    directory.mkdir(exist_ok=True)
    leaves = leaves_of(entries)
    node = stored(leaves)
    (directory / "manifest.json").write_text(json.dumps({"format": 1, "origin": ORIGIN, "tree_size": len(entries)}))
    (directory / "public-key.txt").write_text(VKEY + "\n")
    lines = []
    for index, (entry, leaf) in enumerate(zip(entries, leaves, strict=True)):
        line = {"index": index, "entry": entry}
        if leaf_hashes:
            line["leaf_hash"] = leaf.hex()
        lines.append(json.dumps(line, ensure_ascii=False))
    write_lines(directory / "entries.jsonl", lines)
    lines, previous = [], 0
    for number, size in enumerate(sizes, 1):
        line = {"id": number, "note": signed_checkpoint(size, merkle.root(leaves[:size]))}
        if proofs and previous:
            line["consistency_proof"] = [h.hex() for h in merkle.consistency_proof(previous, size, node)]
        lines.append(json.dumps(line, ensure_ascii=False))
        previous = size
    write_lines(directory / "checkpoints.jsonl", lines)
    return directory


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def edit_entries(bundle: Path, change) -> None:
    """Apply `change` to the parsed entry lines and write them back."""
    path = bundle / "entries.jsonl"
    lines = [json.loads(line) for line in read_lines(path)]
    write_lines(path, [json.dumps(line, ensure_ascii=False) for line in change(lines)])


def renumbered(lines: list[dict]) -> list[dict]:
    # What a careful tamperer does after deleting or inserting: keep the indices dense.
    return [{**line, "index": index} for index, line in enumerate(lines)]


def failure(bundle: Path) -> str:
    report = verify_bundle(bundle)
    assert not report.ok
    return report.problem


@pytest.fixture
def bundle(tmp_path) -> Path:
    return write_bundle(tmp_path / "bundle", make_entries(10))


def test_it_accepts_a_good_bundle(bundle):
    report = verify_bundle(bundle)
    root = merkle.root(leaves_of(make_entries(10)))
    assert report.ok, report.problem
    assert (report.entries, report.checkpoints, report.latest_size, report.latest_root) == (10, 3, 10, root)
    assert report.summary() == f"OK: 10 entries, 3 checkpoints, latest size 10 root {root.hex()}"


def test_it_accepts_a_bundle_with_stored_leaf_hashes_and_consistency_proofs(tmp_path):
    bundle = write_bundle(tmp_path / "b", make_entries(13), (1, 2, 3, 4, 4, 8, 13), leaf_hashes=True, proofs=True)
    assert verify_bundle(bundle).ok, verify_bundle(bundle).problem


def test_it_reports_entries_after_the_latest_checkpoint_as_not_yet_covered(tmp_path):
    report = verify_bundle(write_bundle(tmp_path / "b", make_entries(10), (3, 7)))
    assert report.ok and report.uncovered == 3
    assert report.summary().endswith("; 3 entries after it not yet covered by a checkpoint")


def test_it_names_the_checkpoint_and_the_span_where_an_edited_entry_lies(bundle):
    edit_entries(
        bundle,
        lambda lines: [
            {**line, "entry": {**line["entry"], "actor": "hfa-02"}} if line["index"] == 5 else line for line in lines
        ],
    )
    problem = failure(bundle)
    assert problem.startswith("checkpoint 2 (size 7): the root recomputed from the entries")
    assert (
        "the first entry that differs from what was signed is among entries 3..6: an entry was edited, deleted"
        in problem
    )


def test_it_names_the_edited_entry_when_the_bundle_carries_stored_leaf_hashes(tmp_path):
    bundle = write_bundle(tmp_path / "b", make_entries(10), leaf_hashes=True)
    edit_entries(
        bundle,
        lambda lines: [
            {**line, "entry": {**line["entry"], "actor": "x"}} if line["index"] == 5 else line for line in lines
        ],
    )
    report = verify_bundle(bundle)
    assert (report.ok, report.failed_checkpoint, report.first_bad_index) == (False, 2, 5)
    assert "entry 5 is the first whose recomputed leaf hash differs from its stored one" in report.problem


def test_it_says_the_stored_hashes_were_rewritten_too_when_they_all_match(tmp_path):
    bundle = write_bundle(tmp_path / "b", make_entries(10), leaf_hashes=True)

    def edit(lines):
        lines[5]["entry"]["actor"] = "x"
        lines[5]["leaf_hash"] = merkle.leaf_hash(canonical_bytes(lines[5]["entry"])).hex()
        return lines

    edit_entries(bundle, edit)
    assert "reordered together with their stored leaf hashes" in failure(bundle)


def test_it_names_a_stored_leaf_hash_altered_behind_intact_entries(tmp_path):
    bundle = write_bundle(tmp_path / "b", make_entries(10), leaf_hashes=True)
    edit_entries(bundle, lambda lines: [*lines[:4], {**lines[4], "leaf_hash": "00" * 32}, *lines[5:]])
    problem = failure(bundle)
    assert problem.startswith("entry 4: its stored leaf hash differs") and "the stored hash was altered" in problem


def test_it_names_the_line_of_a_deleted_entry(bundle):
    edit_entries(bundle, lambda lines: lines[:4] + lines[5:])
    assert failure(bundle) == (
        "entries.jsonl line 5: index 5 where 4 was expected: entries are missing, repeated or out of order"
    )


def test_it_names_the_checkpoint_after_a_deleted_entry_when_the_rest_are_renumbered(bundle):
    edit_entries(bundle, lambda lines: renumbered(lines[:4] + lines[5:]))
    assert failure(bundle).startswith("checkpoint 2 (size 7): the root recomputed")


def test_it_names_the_line_of_two_reordered_entries(bundle):
    edit_entries(bundle, lambda lines: [*lines[:4], lines[5], lines[4], *lines[6:]])
    assert failure(bundle).startswith("entries.jsonl line 5: index 5 where 4 was expected")


def test_it_names_the_checkpoint_after_two_entries_reordered_under_their_old_indices(bundle):
    edit_entries(bundle, lambda lines: renumbered([*lines[:1], lines[2], lines[1], *lines[3:]]))
    assert "checkpoint 1 (size 3)" in failure(bundle) and "is among entries 0..2" in failure(bundle)


def test_it_names_the_checkpoint_after_an_inserted_entry(bundle):
    extra = {"index": 0, "entry": {**make_entries(1)[0], "actor": "ghost"}}
    edit_entries(bundle, lambda lines: renumbered([*lines[:8], extra, *lines[8:]]))
    problem = failure(bundle)
    assert problem.startswith("checkpoint 3 (size 10)") and "is among entries 7..9" in problem


def test_it_names_the_line_of_an_inserted_entry_that_repeats_an_index(bundle):
    edit_entries(bundle, lambda lines: [*lines[:8], lines[7], *lines[8:]])
    assert failure(bundle).startswith("entries.jsonl line 9: index 7 where 8 was expected")


def test_it_refuses_a_checkpoint_with_a_bad_signature(bundle):
    path = bundle / "checkpoints.jsonl"
    lines = [json.loads(line) for line in read_lines(path)]
    text, signature = lines[1]["note"].split("\n\n")
    lines[1]["note"] = text.replace("\n7\n", "\n8\n") + "\n\n" + signature
    write_lines(path, [json.dumps(line) for line in lines])
    report = verify_bundle(bundle)
    assert (
        report.problem.startswith(f"checkpoint 2: the signature by {ORIGIN} (") and "does not verify" in report.problem
    )
    assert report.failed_checkpoint == 2


def test_it_refuses_a_checkpoint_signed_by_another_key(bundle):
    other = note.Signer.from_key(note.generate_key(ORIGIN)[0])
    path = bundle / "checkpoints.jsonl"
    lines = read_lines(path)
    lines[2] = json.dumps(
        {"id": 3, "note": signed_checkpoint(10, merkle.root(leaves_of(make_entries(10))), signer=other)}
    )
    write_lines(path, lines)
    assert failure(bundle) == "checkpoint 3: the note carries no signature by a known key"


def test_it_refuses_a_checkpoint_with_the_wrong_origin(bundle):
    path = bundle / "checkpoints.jsonl"
    lines = read_lines(path)
    lines[0] = json.dumps(
        {"id": 1, "note": signed_checkpoint(3, merkle.root(leaves_of(make_entries(3))), origin="elsewhere")}
    )
    write_lines(path, lines)
    assert failure(bundle) == f"checkpoint 1: origin 'elsewhere' is not the log's '{ORIGIN}'"


def test_it_refuses_a_checkpoint_smaller_than_the_one_before(tmp_path):
    bundle = write_bundle(tmp_path / "b", make_entries(10), (3, 7, 5))
    assert failure(bundle) == "checkpoint 3: size 5 is smaller than checkpoint 2's 7: a log never shrinks"


def test_it_refuses_checkpoint_lines_out_of_id_order(bundle):
    path = bundle / "checkpoints.jsonl"
    lines = read_lines(path)
    write_lines(path, [lines[1], lines[0], lines[2]])
    assert failure(bundle) == "checkpoint 1 comes after checkpoint 2: ids must increase"


def test_it_refuses_a_checkpoint_beyond_the_entries(bundle):
    edit_entries(bundle, lambda lines: lines[:8])
    assert failure(bundle) == "checkpoint 3 signs 10 entries but the log has only 8: entries were removed from its end"


def test_it_refuses_a_manifest_that_disagrees_with_the_entries(tmp_path):
    bundle = write_bundle(tmp_path / "b", make_entries(10), (3, 7))
    edit_entries(bundle, lambda lines: lines[:9])
    assert failure(bundle) == "manifest.json: tree_size 10, but entries.jsonl holds 9 entries"


def test_it_refuses_a_bundle_without_checkpoints(tmp_path):
    bundle = write_bundle(tmp_path / "b", make_entries(2), ())
    assert failure(bundle) == "no checkpoint: none of the 2 entries is covered by a signature"


@pytest.mark.parametrize(
    ("name", "line", "message"),
    [
        ("entries.jsonl", '{"index": 3, "entry": {"id": 4,', "entries.jsonl line 4: not valid JSON ("),
        ("entries.jsonl", "", "entries.jsonl line 4: not valid JSON ("),
        ("entries.jsonl", "[3]", "entries.jsonl line 4: not a JSON object"),
        ("entries.jsonl", '{"index": 3}', "entries.jsonl line 4: missing entry"),
        ("entries.jsonl", '{"index": 3, "entry": {}, "extra": 1}', "entries.jsonl line 4: unknown extra"),
        ("entries.jsonl", '{"index": "3", "entry": {}}', "entries.jsonl line 4: index '3' where 3 was expected"),
        ("entries.jsonl", '{"index": 3, "entry": [1]}', "entries.jsonl line 4: entry 3 is not a JSON object"),
        ("entries.jsonl", '{"index": 3, "entry": {}, "leaf_hash": "AB"}', "line 4: leaf_hash: a hash is 64 lowercase"),
        (
            "entries.jsonl",
            '{"index": 3, "entry": {"share": 32.2}}',
            "entry 3: canonical JSON has no floats: 32.2 at $.share",
        ),
        ("checkpoints.jsonl", "{not json", "checkpoints.jsonl line 4: not valid JSON ("),
        ("checkpoints.jsonl", '{"id": 4}', "checkpoints.jsonl line 4: missing note"),
        (
            "checkpoints.jsonl",
            '{"id": 4, "note": 5}',
            "checkpoints.jsonl line 4: id must be an integer and note a string",
        ),
        ("checkpoints.jsonl", '{"id": 4, "note": "x\\n"}', "checkpoint 4: the note has no signature block"),
    ],
)
def test_it_names_the_line_of_a_malformed_line(bundle, name, line, message):
    path = bundle / name
    lines = read_lines(path)
    if name == "entries.jsonl":
        lines[3] = line
    else:
        lines.append(line)
    write_lines(path, lines)
    assert message in failure(bundle)


@pytest.mark.parametrize("name", ["manifest.json", "public-key.txt", "entries.jsonl", "checkpoints.jsonl"])
def test_it_names_a_missing_file(bundle, name):
    (bundle / name).unlink()
    assert failure(bundle) == f"{name} is missing from {bundle}"


def test_it_refuses_a_directory_that_is_not_there(tmp_path):
    assert failure(tmp_path / "nowhere") == f"{tmp_path / 'nowhere'} is not a directory"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": 2, "origin": "o", "tree_size": 1}', "format 2, but this verifier reads format 1"),
        ('{"format": 1, "tree_size": 1}', "origin must be a non-empty string"),
        ("[1]", "manifest.json: not a JSON object"),
        ("{", "manifest.json: not valid JSON"),
    ],
)
def test_it_refuses_a_bad_manifest(bundle, content, message):
    (bundle / "manifest.json").write_text(content)
    assert message in failure(bundle)


def test_it_refuses_a_bad_public_key(bundle):
    (bundle / "public-key.txt").write_text(VKEY + "\n" + VKEY + "\n")
    assert failure(bundle) == "public-key.txt: one line, the verifier key"
    (bundle / "public-key.txt").write_text(VKEY.replace(ORIGIN, "other.log"))
    assert (
        failure(bundle)
        == "public-key.txt: the verifier key's id " + VKEY.split("+")[1] + " does not match its name and key"
    )


def test_it_checks_the_bundle_key_against_the_published_one_when_given(bundle):
    assert verify_bundle(bundle, public_key=VKEY).ok
    _, other = note.generate_key(ORIGIN)
    assert failure_with_key(bundle, other) == (
        f"public-key.txt: the bundle's key {ORIGIN}+{VERIFIER.key_id.hex()} is not the expected "
        f"{ORIGIN}+{other.split('+')[1]}"
    )
    assert failure_with_key(bundle, "nonsense").startswith("the expected public key: a verifier key reads")


def failure_with_key(bundle: Path, key: str) -> str:
    report = verify_bundle(bundle, public_key=key)
    assert not report.ok
    return report.problem


def test_it_checks_consistency_proofs_the_bundle_carries(tmp_path):
    bundle = write_bundle(tmp_path / "b", make_entries(10), proofs=True)
    path = bundle / "checkpoints.jsonl"
    lines = [json.loads(line) for line in read_lines(path)]
    lines[2]["consistency_proof"][0] = "00" * 32
    write_lines(path, [json.dumps(line) for line in lines])
    assert failure(bundle).startswith("checkpoint 3: the consistency proof from checkpoint 2 (size 7) does not verify")


# The core, as verify_audit calls it on the database's rows


def test_it_verifies_database_rows_and_names_the_first_entry_whose_stored_hash_differs():
    entries = make_entries(20)
    leaves = leaves_of(entries)
    checkpoints = [(1, signed_checkpoint(8, merkle.root(leaves[:8]))), (4, signed_checkpoint(20, merkle.root(leaves)))]
    rows = [(index, entry, leaf) for index, (entry, leaf) in enumerate(zip(entries, leaves, strict=True))]
    report = verify_log(iter(rows), iter(checkpoints), VERIFIER, ORIGIN)
    assert (report.ok, report.entries, report.checkpoints, report.latest_size) == (True, 20, 2, 20)

    entries[12]["payload"]["n"] = 999  # a superuser edits a row past the triggers
    entries[15]["actor"] = "x"
    report = verify_log(iter(rows), iter(checkpoints), VERIFIER, ORIGIN)
    assert (report.ok, report.failed_checkpoint, report.first_bad_index) == (False, 4, 12)
    assert report.problem.startswith("checkpoint 4 (size 20): the root recomputed from the entries")


def test_it_names_a_gap_in_the_database_indices():
    entries = make_entries(5)
    report = verify_log([(0, entries[0]), (2, entries[2])], [], VERIFIER, ORIGIN)
    assert report.problem == "entry 2 where entry 1 was expected: entries are missing, repeated or out of order"
    assert report.first_bad_index == 1


def test_extra_checks_see_every_entry_in_order_and_can_fail_the_verification(bundle):
    class Recorder:
        def __init__(self):
            self.indices, self.finished = [], False

        def entry(self, index, entry):
            self.indices.append(index)

        def finish(self):
            self.finished = True

    class Refuser(Recorder):
        def finish(self):
            raise Problem("round 1: the published tally differs from the entries", checkpoint=3)

    recorder = Recorder()
    assert verify_bundle(bundle, checks=[recorder]).ok
    assert recorder.indices == list(range(10)) and recorder.finished
    report = verify_bundle(bundle, checks=[Refuser()])
    assert (report.ok, report.problem, report.failed_checkpoint) == (
        False, "round 1: the published tally differs from the entries", 3
    )  # fmt: skip


# The command line, in a fresh interpreter


def run(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *arguments], cwd=MAIN, capture_output=True, text=True, timeout=60)


def test_the_command_prints_the_summary_and_exits_0_on_a_good_bundle(bundle):
    result = run("-m", "audit.verify", str(bundle))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("OK: 10 entries, 3 checkpoints, latest size 10 root ")


def test_the_command_checks_the_published_key_when_given(bundle):
    assert run("-m", "audit.verify", "--public-key", VKEY, str(bundle)).returncode == 0
    result = run("-m", "audit.verify", "--public-key", note.generate_key(ORIGIN)[1], str(bundle))
    assert result.returncode == 1 and "is not the expected" in result.stderr


def test_the_command_prints_the_first_problem_and_exits_1(bundle):
    (bundle / "checkpoints.jsonl").unlink()
    result = run("-m", "audit.verify", str(bundle))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"FAILED: checkpoints.jsonl is missing from {bundle}\n"


def test_the_command_runs_without_django(bundle):
    # With django poisoned, any import of it would raise ImportError.
    script = (
        "import sys, runpy; sys.modules['django'] = None; "
        "runpy.run_module('audit.verify', run_name='__main__', alter_sys=True)"
    )
    result = run("-c", script, str(bundle))
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout.startswith("OK: 10 entries")
    result = run("-c", "import sys, audit.verify; print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))")
    assert result.stdout == "[]\n"
