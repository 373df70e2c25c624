"""The standalone verifier's bulk check of export format 2 against its careful, line-by-line path.

The bulk check reads each line's link (``prev_hash``) and ``sequence`` from the line's
end instead of parsing it. These tests build exports in memory (no database) and
require that, for every export, it reaches the verdict the careful path reaches (every
line parsed and re-encoded, as ``verify_records`` does for the database), naming the
same event and the same kind of problem, and that intact exports really take it. What
it leaves to signed checkpoints is the last but one test.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from assessments.audit import chain

ORG = "acme"
COUNT = 1_150  # sequence numbers of one to four digits
CHUNKS = [100, 4_096, 1 << 20]  # bytes read at a time: a line spans several reads, a few lines, all


def _records(count: int = COUNT, request_id: Callable[[int], str] = lambda n: f"{n:032x}") -> list[dict[str, Any]]:
    """A chain of ``count`` events; ``request_id`` gives each event's request id (its length varies the layout)."""
    records, prev = [], chain.GENESIS_HASH
    for n in range(1, count + 1):
        record = {
            "organisation": ORG,
            "sequence": n,
            "occurred_at": f"2026-11-22T10:{n // 60 % 60:02d}:{n % 60:02d}.{n:06d}Z",
            "actor_type": "user" if n % 4 else "system",
            "actor_id": str(n % 7),
            "actor_label": "søren" if n % 5 else "check runner",
            "action": "response.updated",
            "object_type": "response",
            "object_id": str(n),
            "pilot_id": None if n % 3 == 0 else n % 1_000,
            "changes": {"status": ["not_started", "met"], "note": [None, f'"quoted" \\ 日本 {n}']},
            "request_id": request_id(n),
            "prev_hash": prev,
        }
        prev = chain.event_hash(record)
        records.append(record)
    return records


def _export(lines: list[bytes]) -> bytes:
    """Export format 2 of these event lines, with a header that matches them (blank lines are not events)."""
    events = [line for line in lines if line.strip()]
    head = hashlib.sha256(events[-1]).hexdigest() if events else chain.GENESIS_HASH
    header = chain.export_header(organisation=ORG, head_sequence=len(events), head_hash=head)
    return b"\n".join([header, *lines]) + b"\n"


def _lines(records: list[dict[str, Any]]) -> list[bytes]:
    return [chain.export_line(record) for record in records]


def _relinked(lines: list[bytes], after: int) -> list[bytes]:
    """The chain recomputed after line ``after`` (0-based), as a forger who edited that line would."""
    lines = list(lines)
    for index in range(after + 1, len(lines)):
        record = json.loads(lines[index])
        record["prev_hash"] = hashlib.sha256(lines[index - 1]).hexdigest()
        lines[index] = chain.export_line(record)
    return lines


def _bulk(export: bytes, chunk: int, monkeypatch, **options: Any) -> tuple[chain.VerifyResult, int]:
    """The verifier's verdict (problem or header problem) and how many events the bulk check passed."""
    monkeypatch.setattr(chain, "EXPORT_CHUNK", chunk)
    header, stream = chain.read_export(io.BytesIO(export), organisation=ORG)
    records = list(stream)
    in_bulk = sum(record.count for record in records if isinstance(record, chain._Verified))
    result = chain.verify_records(records, organisation=ORG, **options)
    problem = result.problem or chain.header_problem(header, result, organisation=ORG)
    return dataclasses.replace(result, problem=problem), in_bulk


def _careful(export: bytes, **options: Any) -> chain.VerifyResult:
    """The careful path: every line parsed and re-encoded."""
    first, *lines = export.split(b"\n")
    records = chain._line_records([line for line in lines if line.strip()], 1)
    result = chain.verify_records(records, organisation=ORG, **options)
    problem = result.problem or chain.header_problem(json.loads(first), result, organisation=ORG)
    return dataclasses.replace(result, problem=problem)


def _where(result: chain.VerifyResult) -> tuple[int | None, str] | None:
    return None if result.problem is None else (result.problem.sequence, result.problem.kind)


LAYOUTS = {
    "request ids of one length": lambda n: f"{n:032x}",
    "request ids of many lengths": lambda n: ["", f"{n:032x}", f"{n:08x}-0000-4000-8000-{n:012x}", "r" * 64][n % 4],
    "jobs without a request id": lambda n: "" if n % 9 == 0 else f"{n:032x}",
    # Two bytes apart: the shorter id's "request_id" key ends where the longer id opens.
    "request ids two bytes apart": lambda n: f"{n:030x}" if n % 2 else f"{n:032x}",
    "request ids past the bulk check's reach": lambda n: "x" * 70 if n == 700 else f"{n:032x}",
}


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_intact_export_passes_in_bulk_with_the_careful_verdict(monkeypatch, layout, chunk):
    export = _export(_lines(_records(request_id=LAYOUTS[layout])))
    result, in_bulk = _bulk(export, chunk, monkeypatch)
    careful = _careful(export)
    assert result.ok and careful.ok, (result.problem, careful.problem)
    assert (result.events_checked, result.head_sequence, result.head_hash) == (
        careful.events_checked,
        careful.head_sequence,
        careful.head_hash,
    )
    if layout == "request ids past the bulk check's reach":
        # The chunk holding the 70-byte id was read line by line (with 1 MB chunks: the whole export), the rest in bulk.
        assert in_bulk < COUNT and (in_bulk > 0 or chunk == 1 << 20)
    else:
        assert in_bulk == COUNT


def _edit(lines: list[bytes], index: int, old: bytes, new: bytes) -> list[bytes]:
    lines = list(lines)
    assert old in lines[index]
    lines[index] = lines[index].replace(old, new, 1)
    return lines


def _renumbered(lines: list[bytes]) -> list[bytes]:
    """Event 500 given number 600, and the chain recomputed after it."""
    record = json.loads(lines[499])
    record["sequence"] = 600
    lines = list(lines)
    lines[499] = chain.export_line(record)
    return _relinked(lines, 499)


def _nested_link(lines: list[bytes]) -> list[bytes]:
    """Event 500's own link broken, the right one planted in ``changes`` where a slicer searching
    from the line's start finds it first; the chain recomputed after it."""
    record = json.loads(lines[499])
    right = record["prev_hash"]
    record["prev_hash"] = "f" * 64
    record["changes"] = {"prev_hash": right, "request_id": "", "sequence": 500}
    lines = list(lines)
    lines[499] = chain.export_line(record)
    return _relinked(lines, 499)


def _link_in_request_id(lines: list[bytes]) -> list[bytes]:
    """Event 500's link broken, and its request id ending in what a well-formed tail ends with."""
    record = json.loads(lines[499])
    right = record["prev_hash"]
    record["prev_hash"] = "f" * 64
    record["request_id"] = f'x","prev_hash":"{right}'
    lines = list(lines)
    lines[499] = chain.export_line(record)
    return _relinked(lines, 499)


def _tail_in_an_object(lines: list[bytes]) -> list[bytes]:
    """Event 500 a valid JSON object whose last members (a link, a request id, its sequence) sit in a
    nested object at its end; its own link broken."""
    record = json.loads(lines[499])
    right = record["prev_hash"]
    record["prev_hash"] = "f" * 64
    crafted = chain.export_line(record)[:-1] + b',"z":{"a":"' + b'","prev_hash":"' + right.encode()
    crafted += b'","request_id":"' + b"b" * 32 + b'","sequence":500}}'
    lines = list(lines)
    lines[499] = crafted
    return _relinked(lines, 499)


def _object_closed_in_request_id(lines: list[bytes]) -> list[bytes]:
    """Event 500's link broken; at its end a nested object holding the right link, closed inside what,
    read as a request id as long as the other events' (32 bytes), sits where the request id does."""
    record = json.loads(lines[499])
    right, length = record["prev_hash"], 32  # the length of the other events' request ids
    record["prev_hash"] = "f" * 64
    hidden = b'a"},"w":"'
    crafted = chain.export_line(record)[: -len(b',"sequence":500}')] + b',"y":{"k":1,"prev_hash":"' + right.encode()
    crafted += b'","request_id":"' + hidden + b"c" * (length - len(hidden)) + b'","sequence":500}'
    assert json.loads(crafted)["y"]["prev_hash"] == right
    lines = list(lines)
    lines[499] = crafted
    return _relinked(lines, 499)


def _quote_in_request_id(lines: list[bytes]) -> list[bytes]:
    """Event 500 with its real link at the top level but a member hidden in its request id's place."""
    lines = list(lines)
    lines[499] = lines[499].replace(b'","sequence":500}', b'","x":"y","sequence":500}', 1)
    return _relinked(lines, 499)


def _escaped_close(lines: list[bytes]) -> list[bytes]:
    """A backslash just before the request id's closing quote: the quote is escaped, the line no JSON."""
    lines = list(lines)
    lines[499] = lines[499].replace(b'","sequence":500}', b'\\","sequence":500}', 1)
    return _relinked(lines, 499)


def _drop(lines: list[bytes], index: int) -> list[bytes]:
    return lines[:index] + lines[index + 1 :]


def _swap(lines: list[bytes], index: int) -> list[bytes]:
    lines = list(lines)
    lines[index], lines[index + 1] = lines[index + 1], lines[index]
    return lines


RECOMPUTED = "an event changed, the chain recomputed after it"
TAMPERING = {
    "a changed byte": lambda lines: _edit(lines, 499, b'"actor_id":"', b'"actor_id":"9'),
    "a changed byte in the last event": lambda lines: _edit(lines, COUNT - 1, b'"actor_id":"', b'"actor_id":"9'),
    "a changed sequence number": lambda lines: _edit(lines, 499, b'"sequence":500}', b'"sequence":501}'),
    "a changed link": lambda lines: _edit(lines, 499, b'"prev_hash":"', b'"prev_hash":"0'),
    RECOMPUTED: lambda lines: _relinked(_edit(lines, 499, b'"actor_id":"', b'"actor_id":"9'), 499),
    "an event renumbered, the chain recomputed": _renumbered,
    "the same values spelled with a space": lambda lines: _edit(lines, 499, b'{"action":"', b'{"action": "'),
    "a removed event": lambda lines: _drop(lines, 499),
    "the first event removed": lambda lines: _drop(lines, 0),
    "the last event removed": lambda lines: _drop(lines, COUNT - 1),
    "two events swapped": lambda lines: _swap(lines, 499),
    "an event repeated": lambda lines: [*lines[:500], lines[499], *lines[500:]],
    "a line that is not JSON": lambda lines: [*lines[:499], b"{not json", *lines[500:]],
    "an event of another organisation": lambda lines: _edit(
        lines, 499, b'"organisation":"acme"', b'"organisation":"x"'
    ),
    "a blank line": lambda lines: [*lines[:499], b"", *lines[499:]],
    "a link planted in changes": _nested_link,
    "a link planted in the request id": _link_in_request_id,
    "a link in a nested object at the end": _tail_in_an_object,
    "a member hidden in the request id": _quote_in_request_id,
    "a link in an object closed in the request id": _object_closed_in_request_id,
    "an escaped closing quote": _escaped_close,
}


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("case", TAMPERING)
def test_tampering_is_named_as_the_careful_path_names_it(monkeypatch, case, chunk):
    lines = TAMPERING[case](_lines(_records(request_id=LAYOUTS["request ids of many lengths"])))
    # With a header rewritten to match, a changed or removed last event, or a chain recomputed after
    # a change, is a valid chain (what checkpoints are for); with the original header, it is caught.
    rewritten = _export(lines)
    original = _export(_lines(_records(request_id=LAYOUTS["request ids of many lengths"])))
    stale = original.split(b"\n", 1)[0] + b"\n" + rewritten.split(b"\n", 1)[1]
    for export, passes in [
        (rewritten, case in {"a blank line", "a changed byte in the last event", "the last event removed", RECOMPUTED}),
        (stale, case == "a blank line"),  # blank lines were always skipped
    ]:
        result, _ = _bulk(export, chunk, monkeypatch)
        careful = _careful(export)
        assert _where(result) == _where(careful)
        assert careful.ok is passes, careful.problem


@pytest.mark.parametrize(
    "case",
    [
        "a link planted in changes",
        "a link planted in the request id",
        "a link in a nested object at the end",
        "a link in an object closed in the request id",
    ],
)
def test_a_slicer_reading_the_wrong_link_would_pass_these_lines_but_the_bulk_check_does_not(case):
    """The crafted event's own link is broken, yet the right hash sits where a naive slicer would read it."""
    lines = TAMPERING[case](_lines(_records()))
    crafted, right = lines[499], hashlib.sha256(lines[498]).hexdigest().encode()
    assert right in crafted  # where a slicer that does not check what surrounds it can pick it up
    assert json.loads(crafted)["prev_hash"] == "f" * 64  # what the event says
    hashes = [hashlib.sha256(line).hexdigest() for line in lines]
    assert not chain._tails_linked(lines[490:510], hashes[490:510], hashes[489], 491)
    assert chain._tails_linked(lines[480:499], hashes[480:499], hashes[479], 481)  # the lines before it pass
    assert _where(_careful(_export(lines))) == (500, "broken link")


@pytest.mark.parametrize("chunk", CHUNKS)
def test_an_export_of_another_organisation_is_refused_at_its_first_event(monkeypatch, chunk):
    """Its own chain is intact (and its header claims this organisation): each chunk's first line is checked
    with care, so the first chunk is read line by line and the first event named."""
    lines = [line.replace(b'"organisation":"acme"', b'"organisation":"globex"', 1) for line in _lines(_records())]
    export = _export(_relinked(lines, 0))
    result, _ = _bulk(export, chunk, monkeypatch)
    assert _where(result) == _where(_careful(export)) == (1, "wrong organisation")


def test_every_sequence_number_is_checked_not_only_a_chunks_first_and_last(monkeypatch):
    """A renumbered event inside a chunk, with every link recomputed, is a gap: the bulk check names it."""
    export = _export(_renumbered(_lines(_records())))
    result, _ = _bulk(export, 1 << 20, monkeypatch)
    assert _where(result) == (500, "gap in sequence")


@pytest.mark.parametrize(
    ("first", "count"), [(1, 9), (10, 90), (995, 5), (1_000, 2_500), (12_345, 2_399), (999_000, 1_000), (10**8, 3)]
)
def test_each_digit_column_of_consecutive_sequence_numbers_is_computed_exactly(first, count):
    numbers = [str(n) for n in range(first, first + count)]
    for k in range(len(numbers[0])):
        assert chain._digit_column(first, count, k) == "".join(n[-1 - k] for n in numbers).encode()


def _checkpoint(lines: list[bytes]) -> tuple[dict[str, Any], str]:
    """A version-2 checkpoint over these lines, signed with a fresh key; and that key's id."""
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    hashes = [hashlib.sha256(line).hexdigest() for line in lines]
    checkpoint: dict[str, Any] = {
        "format": chain.CHECKPOINT_FORMAT,
        "organisation": ORG,
        "sequence": len(lines),
        "head_hash": hashes[-1],
        "signed_at": "2026-11-22T11:00:00.000000Z",
        "key_id": hashlib.sha256(raw).hexdigest(),
        "public_key": base64.b64encode(raw).decode(),
        "first_sequence": 1,
        "event_hashes": hashes,
    }
    checkpoint["signature"] = base64.b64encode(key.sign(chain.checkpoint_message(checkpoint))).decode()
    return checkpoint, checkpoint["key_id"]


@pytest.mark.parametrize(
    ("old", "new"), [(b'"organisation":"acme"', b'"organisation":"x"'), (b'"actor_id":"', b'"actor_id":"9')]
)
def test_a_chain_recomputed_after_an_edit_is_located_by_the_checkpoint_in_bulk(monkeypatch, old, new):
    """What the bulk check leaves to checkpoints: it does not parse every line, so an event edited
    (even given another organisation) in a chain recomputed after it links up; the signed event
    hashes locate it."""
    lines = _lines(_records())
    checkpoint, key = _checkpoint(lines)
    export = _export(_relinked(_edit(lines, 499, old, new), 499))
    options = {"checkpoints": [checkpoint], "trusted_key_ids": {key}}
    result, in_bulk = _bulk(export, 1 << 20, monkeypatch, **options)
    assert in_bulk == COUNT
    assert result.problem is not None and result.problem.sequence == 500
    assert "rewritten after the signed checkpoint" in result.problem.detail
    assert _careful(export, **options).problem.sequence == 500
    intact, _ = _bulk(_export(lines), 1 << 20, monkeypatch, **options)
    assert intact.ok and intact.checkpoints_checked == 1


def _evidence_records() -> list[dict[str, Any]]:
    records, prev = [], chain.GENESIS_HASH
    for record in _records(300):
        if record["sequence"] % 37 in {0, 1}:
            name = f"evidence/{record['sequence']}.csv"
            record["action"] = "evidence.added"
            record["changes"] = {"file": [None, name], "sha256": [None, hashlib.sha256(name.encode()).hexdigest()]}
        record["prev_hash"] = prev
        prev = chain.event_hash(record)
        records.append(record)
    return records


@pytest.mark.parametrize("chunk", [1, 97, *range(300, 1_400, 61), 1 << 20])
def test_every_evidence_event_is_found_wherever_chunks_cut_the_file(monkeypatch, chunk):
    """Evidence events are found in the block as read: at a chunk's start, end, or cut by it."""
    export = _export(_lines(_evidence_records()))
    added = [n for n in range(1, 301) if n % 37 in {0, 1}]

    def right(name: str) -> str:
        return hashlib.sha256(name.encode()).hexdigest()

    result, in_bulk = _bulk(export, chunk, monkeypatch, file_hasher=right)
    assert in_bulk == 300 and result.ok and result.files_checked == len(added)  # each found, its file checked
    result, _ = _bulk(export, chunk, monkeypatch, file_hasher=lambda name: "x")
    assert _where(result) == (added[0], "file hash mismatch")
    last = f"evidence/{added[-1]}.csv"
    result, _ = _bulk(export, chunk, monkeypatch, file_hasher=lambda name: None if name == last else right(name))
    assert _where(result) == (added[-1], "missing file")


@pytest.mark.parametrize("chunk", CHUNKS)
def test_a_deeply_nested_line_is_reported_broken_not_a_crash(monkeypatch, chunk):
    lines = _lines(_records())
    lines[5] = b"[" * 200_000 + b"]" * 200_000
    export = _export(lines)
    result, _ = _bulk(export, chunk, monkeypatch)
    careful = _careful(export)
    assert not result.ok and not careful.ok
    assert result.problem is not None and result.problem.sequence is not None and result.problem.sequence <= 6
