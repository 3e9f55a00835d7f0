"""Hostile input: whatever lands, the platform accepts it or refuses it with a clear contract error.

The landing reader (``stores/snapshot.py``) and the data contracts (``rules/contracts.py``,
``rules/features.py``) are fuzzed with hypothesis: random and mutated frames (wrong types, inf, NaN,
1e308, -0.0, integers beyond 64 bits, megabyte strings, timestamps centuries away), odd encodings
(latin-1, UTF-16 with BOM, NUL bytes, mixed newlines), malformed CSV (ragged rows, unbalanced quotes,
empty, header only, binary garbage) and malformed Parquet (truncated, wrong magic, flipped bytes, valid
with the wrong schema). Each example goes the way a landing file goes in production: read, snapshot,
reload (hash-verified), every snapshot gate, then the feature frame and its contract. The only outcomes
allowed are a passed or failed ``GateResult`` that reads as evidence, or a ``ContractViolation`` that
names the file or the asset; never another exception, a hang (hypothesis deadlines, pytest-timeout),
or anything under the snapshot root but complete snapshots.

Names and ids that come from outside (model names, snapshot ids from run metadata or registry tags,
landing files that are symbolic links) must not lead outside their folders. Decision on symbolic
links: a landing file that links to a file inside its landing folder is read as usual; one that links
outside is refused by name (a landing source could otherwise make the platform read and echo any file it
can read); a dangling link is not a file and is not listed.

Examples are derandomized (``derandomize=True``) so a failure reproduces on every machine.
"""

from __future__ import annotations

import io
import json
import math
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from growth.conversion.demo_data import generate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_platform.errors import ContractViolation
from ml_platform.rules.contracts import schema_holds, snapshot_gate_names, snapshot_gates
from ml_platform.rules.evidence import GateResult
from ml_platform.rules.features import build_feature_frame
from ml_platform.rules.spec import ModelSpec, resolve_ref, validate_model_name
from ml_platform.stores.snapshot import (
    SNAPSHOT_ID_PATTERN,
    list_landing_files,
    load_snapshot,
    read_landing,
    read_landing_file,
    take_snapshot,
)
from ml_platform_tests.harness import failed_checks, failure_messages, materialized
from ml_platform_tests.models import CONVERSION, IRIS

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(180)]

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
# The shipped conversion contract and gates, with a minimum a 120-row frame can meet: every gate then
# judges the frame on its merits and a harmless mutation reaches the feature contract.
SPEC = CONVERSION.model_copy(update={"min_rows": 50})
CONTRACT = resolve_ref(SPEC.contract)
BASE = generate(120, seed=11, end=NOW)
MAX_MESSAGE = 5_000  # a refusal is read by a person, in a terminal or the run log: never a data dump
FUZZ = settings(
    max_examples=30,
    deadline=timedelta(seconds=10),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)

# ------------------------------------------------------------------ the path every landing file takes


def ingest(landing: Path, root: Path, spec: ModelSpec = SPEC) -> str:
    """Read, snapshot, reload, gate and build features the way the graph does; say how it ended.

    Returns "refused" (a ContractViolation, checked to be clear), "gate failed" (a failed GateResult,
    checked to be evidence) or "accepted" (every gate and the feature contract passed). Any other
    exception propagates and fails the test. The snapshot root is checked whatever happened.
    """
    contract = resolve_ref(spec.contract)
    names = [p.name for p in landing.iterdir()]
    try:
        try:
            frame, sources = read_landing(landing, spec.name)
            snapshot = take_snapshot(frame, sources, root)
            stored_snapshot, stored = load_snapshot(root, snapshot.snapshot_id)
        except ContractViolation as error:
            assert_clear(error, names)
            return "refused"
        subject = f"dataset_snapshot {spec.name!r} {snapshot.snapshot_id[:12]}"
        results = snapshot_gates(stored, spec, contract, subject, NOW)
        assert [r.gate for r in results] == snapshot_gate_names(spec)
        for result in results:
            assert_evidence(result, subject)
        if not all(r.passed for r in results):
            return "gate failed"
        try:
            features = build_feature_frame(stored, spec, contract)
        except ContractViolation as error:
            assert_clear(error, names)
            return "refused"
        feature_contract = resolve_ref(spec.feature_contract)
        feature_result = schema_holds(features, feature_contract, "features", "feature_contract_holds")
        assert_evidence(feature_result, "features")
        return "accepted" if feature_result.passed else "gate failed"
    finally:
        assert_only_complete_snapshots(root)


def assert_clear(error: ContractViolation, file_names: list[str]) -> None:
    """A refusal names what it refused (a landing file or the asset), says what was expected, stays short."""
    message = str(error)
    assert any(repr(name) in message for name in file_names) or "dataset_snapshot" in message, message[:500]
    assert len(message) <= MAX_MESSAGE, f"{len(message):,} characters: {message[:300]}…"


def assert_evidence(result: GateResult, subject: str) -> None:
    """A gate result names its gate and subject, and each violated rule its observed and required values."""
    assert isinstance(result, GateResult) and result.gate and result.subject == subject and result.rules
    for rule in result.violations:
        assert rule.rule and str(rule.observed) != "" and rule.required, rule
    summary, table = result.summary(), result.table()  # what the run log and the UI show
    assert len(summary) <= MAX_MESSAGE, f"{result.gate}: a {len(summary):,}-character summary: {summary[:300]}…"
    assert len(table) <= 4 * MAX_MESSAGE, f"{result.gate}: a {len(table):,}-character table"
    assert len(json.dumps(result.details, default=str)) <= 20 * MAX_MESSAGE, f"{result.gate}: details too large"


def assert_only_complete_snapshots(root: Path) -> None:
    """Nothing under the snapshot root but whole snapshots that verify against their manifests."""
    if not root.exists():
        return
    for entry in root.iterdir():
        assert SNAPSHOT_ID_PATTERN.fullmatch(entry.name), f"{entry.name!r} left under the snapshot root"
        assert sorted(p.name for p in entry.iterdir()) == ["data.parquet", "manifest.json"], entry
        load_snapshot(root, entry.name)  # raises if the data file does not match its manifest


@pytest.fixture
def folders(tmp_path_factory):
    """A fresh (landing folder, snapshot root) per call: hypothesis runs many examples per test."""

    def make() -> tuple[Path, Path]:
        base = tmp_path_factory.mktemp("hostile")
        (base / "landing").mkdir()
        return base / "landing", base / "snapshots"

    return make


# ------------------------------------------------------------------ strategies

HOSTILE_FLOATS = [math.inf, -math.inf, math.nan, 1e308, -1e308, -0.0, 5e-324, 1.7976931348623157e308]
HUGE_INTS = [2**63, -(2**63) - 1, 2**64, 10**30, -(10**30)]
HUGE_TEXT = "x" * 100_000
HOSTILE_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "é€ü",
    "\r\n",
    '"',
    "'",
    ",",
    "NaN",
    "null",
    "None",
    "1e308",
    "inf",
    "-0",
    "../../etc/passwd",
    "1700-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "0001-01-01",
    "2026-13-45T99:99:99Z",
    "True",
    "yes",
]
HOSTILE_TIMES = [
    pd.Timestamp("1700-01-01", tz="UTC"),
    pd.Timestamp("2262-04-11", tz="UTC"),
    pd.Timestamp("1677-09-22", tz="UTC"),
    pd.NaT,
]

small_hostile_value = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(HOSTILE_FLOATS),
    st.sampled_from(HUGE_INTS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=12),
    st.sampled_from(HOSTILE_TIMES),
)
hostile_value = st.one_of(small_hostile_value, st.just(HUGE_TEXT))  # the huge one only in single cells


@st.composite
def mutated_frames(draw) -> pd.DataFrame:
    """The valid base frame with a few hostile cells, a retyped, dropped, renamed or extra column."""
    frame = BASE.copy()
    for _ in range(draw(st.integers(0, 4))):
        column = draw(st.sampled_from(list(frame.columns)))
        row = draw(st.integers(0, len(frame) - 1))
        value = draw(hostile_value)
        frame[column] = frame[column].astype(object)
        frame.iat[row, frame.columns.get_loc(column)] = value
    change = draw(st.sampled_from(["none", "retype", "drop", "rename", "extra", "duplicate rows", "constant"]))
    column = draw(st.sampled_from(list(frame.columns)))
    if change == "retype":
        frame[column] = [draw(small_hostile_value)] * len(frame)
    elif change == "drop":
        frame = frame.drop(columns=column)
    elif change == "rename":
        frame = frame.rename(columns={column: draw(st.sampled_from(["", "Unnamed: 0", "x" * 5000, "a,b", '"']))})
    elif change == "extra":
        frame = frame.assign(**{draw(st.text(min_size=1, max_size=8)): draw(small_hostile_value)})
    elif change == "duplicate rows":
        frame = pd.concat([frame, frame.head(draw(st.integers(1, 5)))], ignore_index=True)
    elif change == "constant":
        frame[column] = frame[column].iloc[0]
    return frame


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write as an exporter would; a column Parquet cannot hold as one type is written as text."""
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
        return
    try:
        frame.to_parquet(path, index=False)
    except Exception:  # mixed Python objects in a column: an exporter would have written text
        frame.astype({c: "str" for c in frame.columns if frame[c].dtype == object}).to_parquet(path, index=False)


ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-16-le"]


@st.composite
def csv_bytes(draw) -> bytes:
    """A CSV export gone wrong: odd encodings, NUL bytes, mixed newlines, cut short, ragged, garbage."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=4096))
    text = BASE.head(draw(st.integers(0, 80))).to_csv(index=False)
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["é", "€", "ü", "\x00", "中", "\ufeff"])) + text[at:]
    newline = draw(st.sampled_from(["\n", "\r\n", "\r", "mixed"]))
    if newline == "mixed":
        lines = text.split("\n")
        text = "".join(line + draw(st.sampled_from(["\n", "\r\n", "\r"])) for line in lines[:-1]) + lines[-1]
    else:
        text = text.replace("\n", newline)
    damage = draw(st.sampled_from(["none", "truncate", "quote", "ragged", "short row", "header only", "garbage"]))
    if damage == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif damage == "quote":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + '"' + text[at:]
    elif damage == "ragged":
        text += "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o\n"
    elif damage == "short row":
        text += "only-one-field\n"
    elif damage == "header only":
        text = text.split("\n", 1)[0] + "\n"
    data = text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")
    if damage == "garbage":
        data += draw(st.binary(min_size=1, max_size=256))
    return data


@st.composite
def parquet_bytes(draw) -> bytes:
    """A Parquet export gone wrong: truncated, wrong magic, flipped bytes, or sound with the wrong schema."""
    if draw(st.booleans()):
        frame = BASE.head(draw(st.integers(0, 80)))
    else:  # a sound file with a schema that has nothing to do with the contract
        length = draw(st.integers(1, 5))
        values = st.lists(hostile_value, min_size=length, max_size=length)
        names = draw(st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=3))
        frame = pd.DataFrame({name: draw(values) for name in names})
    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer, index=False)
    except Exception:
        frame.astype(str).to_parquet(buffer, index=False)
    data = bytearray(buffer.getvalue())
    damage = draw(st.sampled_from(["none", "truncate", "head magic", "tail magic", "flip", "prefix", "suffix"]))
    if damage == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "head magic":
        data[:4] = b"PAR2"
    elif damage == "tail magic":
        data[-4:] = b"\x00\x00\x00\x00"
    elif damage == "flip":
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= draw(st.integers(1, 255))
    elif damage == "prefix":
        data = bytearray(draw(st.binary(min_size=1, max_size=64))) + data
    elif damage == "suffix":
        data += draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


# ------------------------------------------------------------------ the fuzz tests


def test_the_unmutated_frame_is_accepted(folders):
    """The fuzzing starts from a frame every gate and the feature contract accept: mutations are what fails."""
    landing, root = folders()
    write_frame(BASE, landing / "export.csv")
    assert ingest(landing, root) == "accepted"


@FUZZ
@given(frame=mutated_frames(), suffix=st.sampled_from([".csv", ".parquet"]))
def test_mutated_frames_are_accepted_or_refused_clearly(folders, frame, suffix):
    landing, root = folders()
    write_frame(frame, landing / f"export{suffix}")
    assert ingest(landing, root) in {"accepted", "gate failed", "refused"}


@settings(FUZZ, max_examples=60)
@given(data=csv_bytes())
def test_malformed_csv_bytes_are_accepted_or_refused_clearly(folders, data):
    landing, root = folders()
    (landing / "export.csv").write_bytes(data)
    assert ingest(landing, root) in {"accepted", "gate failed", "refused"}


@settings(FUZZ, max_examples=60)
@given(data=parquet_bytes())
def test_malformed_parquet_bytes_are_accepted_or_refused_clearly(folders, data):
    landing, root = folders()
    (landing / "export.parquet").write_bytes(data)
    assert ingest(landing, root) in {"accepted", "gate failed", "refused"}


@FUZZ
@given(
    first=mutated_frames(),
    second=mutated_frames(),
    suffixes=st.sampled_from([(".csv", ".parquet"), (".parquet", ".csv"), (".csv", ".csv")]),
)
def test_two_hostile_files_together_are_accepted_or_refused_clearly(folders, first, second, suffixes):
    """Files that disagree on types or headers meet in one snapshot (a CSV's text beside Parquet's types)."""
    landing, root = folders()
    write_frame(first, landing / f"a{suffixes[0]}")
    write_frame(second, landing / f"b{suffixes[1]}")
    assert ingest(landing, root) in {"accepted", "gate failed", "refused"}


@settings(FUZZ, max_examples=40)
@given(
    columns=st.dictionaries(
        st.one_of(st.sampled_from(list(BASE.columns)), st.text(max_size=6)),
        st.lists(hostile_value, min_size=0, max_size=8),
        max_size=12,
    ),
    spec=st.sampled_from([SPEC, IRIS]),
)
def test_contract_gates_on_random_frames_return_evidence(columns, spec):
    """The gates themselves, on frames no reader would produce: ragged object columns of anything."""
    length = max((len(values) for values in columns.values()), default=0)
    frame = pd.DataFrame(
        {name: pd.Series(values + [None] * (length - len(values)), dtype=object) for name, values in columns.items()}
    )
    results = snapshot_gates(frame, spec, resolve_ref(spec.contract), "random frame", NOW)
    assert [r.gate for r in results] == snapshot_gate_names(spec)
    for result in results:
        assert_evidence(result, "random frame")


# ------------------------------------------------------------------ found by the fuzzing, kept as examples


@pytest.mark.parametrize(
    ("case", "writer", "outcome", "message"),
    [
        (
            "integer beyond 64 bits",
            lambda p: BASE.assign(pages_viewed=10**30).to_csv(p / "a.csv", index=False),
            "gate failed",
            None,
        ),
        (
            "Parquet list column",
            lambda p: BASE.assign(region=[[1, 2]] * len(BASE)).to_parquet(p / "a.parquet"),
            "refused",
            r"column 'region' holds nested values \(ndarray in row 0\)",
        ),
        (
            "Parquet struct column",
            lambda p: BASE.assign(device=[{"a": 1}] * len(BASE)).to_parquet(p / "a.parquet"),
            "refused",
            r"column 'device' holds nested values \(dict in row 0\)",
        ),
        (
            "Parquet bytes, not UTF-8",
            lambda p: BASE.assign(region=[b"\xff\x00"] * len(BASE)).to_parquet(p / "a.parquet"),
            "refused",
            r"column 'region' holds bytes that are not UTF-8 text \(row 0",
        ),
        (
            "Parquet bytes in UTF-8",
            lambda p: BASE.assign(region=BASE["region"].str.encode("utf-8")).to_parquet(p / "a.parquet"),
            "accepted",
            None,
        ),
        (
            "timestamps three centuries old",
            lambda p: BASE.assign(event_time="1700-01-01T00:00:00Z").to_csv(p / "a.csv", index=False),
            "gate failed",
            None,
        ),
    ],
)
def test_what_the_fuzzing_found(folders, case, writer, outcome, message):
    """Each crashed inside the platform before (OverflowError, TypeError, UnicodeDecodeError, OutOfBoundsDatetime)."""
    landing, root = folders()
    writer(landing)
    if message:
        with pytest.raises(ContractViolation, match=message):
            read_landing(landing, SPEC.name)
    assert ingest(landing, root) == outcome, case


def test_an_integer_beyond_64_bits_is_named_by_the_schema_gate(folders):
    landing, root = folders()
    BASE.assign(pages_viewed=[10**30] + [2] * (len(BASE) - 1)).to_csv(landing / "a.csv", index=False)
    frame, _ = read_landing(landing, SPEC.name)
    result = schema_holds(frame, CONTRACT, "s")
    assert not result.passed
    assert "1000000000000000000000000000000" in result.summary() and "pages_viewed" in result.summary()


def test_ancient_timestamps_fail_freshness_with_their_age(folders):
    landing, _ = folders()
    BASE.assign(event_time="1700-01-01T00:00:00Z").to_csv(landing / "a.csv", index=False)
    frame, _ = read_landing(landing, SPEC.name)
    fresh = {r.gate: r for r in snapshot_gates(frame, SPEC, CONTRACT, "s", NOW)}["is_fresh"]
    age = fresh.rules[0]
    assert not age.passed and age.observed.endswith(" days") and float(age.observed.split()[0]) > 119_000, age


def test_a_megabyte_value_is_shortened_in_the_evidence(folders):
    """A hostile 1 MB string must not be copied whole into messages, Dagster metadata and the ledger."""
    landing, root = folders()
    BASE.assign(region="x" * 200_000).to_csv(landing / "a.csv", index=False)
    assert ingest(landing, root) == "gate failed"  # ingest checks every summary stays under MAX_MESSAGE


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_a_file_in_another_encoding_is_refused_by_name(folders, encoding):
    landing, _ = folders()
    (landing / "export.csv").write_bytes(BASE.assign(device="é").to_csv(index=False).encode(encoding))
    with pytest.raises(ContractViolation, match=r"landing file 'export\.csv' is not UTF-8 text: byte 0x"):
        read_landing(landing, SPEC.name)


# ------------------------------------------------------------------ names and paths that try to leave their folder

ESCAPING_NAMES = ["../x", "..", ".", "/etc", "a/../../b", "a\x00b", "a" * 64, "", "x\n", "A", "a b", "a\\b", "~root"]


@pytest.mark.parametrize("name", ESCAPING_NAMES)
def test_a_model_name_that_could_leave_its_folder_is_refused(name):
    with pytest.raises(ValueError, match="is not allowed"):
        validate_model_name(name)
    with pytest.raises(ValueError, match="is not allowed"):
        ModelSpec.model_validate({**CONVERSION.model_dump(), "name": name})


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(name=st.text(max_size=80))
def test_an_accepted_model_name_stays_inside_every_folder(tmp_path_factory, name):
    """Any name ``validate_model_name`` lets through is one plain folder level under each platform folder."""
    try:
        validate_model_name(name)
    except ValueError:
        return
    root = Path("/platform/home/landing")
    assert (root / name).parent == root and os.path.normpath(root / name) == str(root / name)
    assert "\x00" not in name and len(name) <= 63


@pytest.mark.parametrize("snapshot_id", ["../outside", "/etc", "..", "", "a\x00b", "ABCDEF", "0" * 65, "f00d/.."])
def test_a_snapshot_id_that_is_not_a_content_hash_is_refused(tmp_path, snapshot_id):
    """Snapshot ids arrive from run metadata and registry tags: ``root / "/etc"`` would be ``/etc``."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "manifest.json").write_text("{}")
    with pytest.raises(ContractViolation, match="is not a snapshot id: expected lowercase hexadecimal digits"):
        load_snapshot(tmp_path / "snapshots", snapshot_id)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(snapshot_id=st.text(max_size=70))
def test_any_snapshot_id_is_refused_or_stays_under_the_root(tmp_path_factory, snapshot_id):
    root = tmp_path_factory.mktemp("ids") / "snapshots"
    try:
        load_snapshot(root, snapshot_id)
    except ContractViolation as error:
        message = str(error)
        assert "is not a snapshot id" in message or f"snapshot {snapshot_id} does not exist under" in message
        if "does not exist" in message:
            assert (root / snapshot_id).parent == root


def test_the_cli_refuses_an_escaping_model_name_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """Exit 2 (usage), a message naming the rule, and no file anywhere under the platform home."""
    from ml_platform.cli import ExitCode, main

    home = tmp_path / "home"
    monkeypatch.setenv("ML_PLATFORM_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    for argv in (
        ["demo-data", "../../escaped"],
        ["demo-data", "/tmp/escaped"],
        ["run", "../iris"],
        ["check-data", "../iris"],
        ["explain", "../iris"],
        ["history", "../iris"],
    ):
        assert main(argv) == ExitCode.USAGE, argv
        err = capsys.readouterr().err
        assert "is not allowed" in err or "no model named" in err, (argv, err)
    assert not (tmp_path / "escaped").exists() and not Path("/tmp/escaped").exists()
    assert not home.exists() or not any(home.rglob("*")), sorted(home.rglob("*"))


def test_a_landing_symlink_to_a_file_outside_is_refused_by_name(tmp_path):
    """``export.csv -> ~/.pgpass`` would otherwise be read, snapshotted and echoed into gate metadata."""
    landing = tmp_path / "landing"
    landing.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("password\nhunter2-sentinel\n")
    (landing / "export.csv").symlink_to(secret)
    assert [p.name for p in list_landing_files(landing)] == ["export.csv"]
    with pytest.raises(ContractViolation, match=r"landing file 'export\.csv' is a symbolic link to .*outside its"):
        read_landing(landing, "conversion")
    with pytest.raises(ContractViolation) as refused:
        read_landing_file(landing / "export.csv")
    assert "hunter2" not in str(refused.value)


def test_a_landing_symlink_inside_the_folder_is_read_and_a_dangling_one_is_not_listed(tmp_path):
    landing = tmp_path / "landing"
    (landing / "exports").mkdir(parents=True)
    BASE.to_csv(landing / "exports" / "monday.csv", index=False)
    (landing / "latest.csv").symlink_to(landing / "exports" / "monday.csv")
    (landing / "gone.csv").symlink_to(tmp_path / "nowhere.csv")
    (landing / "loop.csv").symlink_to(landing / "loop.csv")
    assert [p.name for p in list_landing_files(landing)] == ["latest.csv"]
    frame, sources = read_landing(landing, "conversion")
    assert len(frame) == len(BASE) and [s.name for s in sources] == ["latest.csv"]


def test_a_linked_landing_folder_is_followed_as_a_whole(tmp_path):
    """A team may point its landing folder at a mounted share; files inside that share are its files."""
    share = tmp_path / "share"
    share.mkdir()
    BASE.to_csv(share / "export.csv", index=False)
    (tmp_path / "landing").symlink_to(share, target_is_directory=True)
    frame, _ = read_landing(tmp_path / "landing", "conversion")
    assert len(frame) == len(BASE)


# ------------------------------------------------------------------ through the real graph


@pytest.mark.parametrize(
    ("case", "writer", "failure", "gate"),
    [
        (
            "nested Parquet column",
            lambda p: BASE.assign(region=[[1]] * len(BASE)).to_parquet(p / "x.parquet"),
            "column 'region' holds nested values",
            None,
        ),
        (
            "integer beyond 64 bits",
            lambda p: BASE.assign(pages_viewed=10**30).to_csv(p / "x.csv", index=False),
            None,
            "schema_holds",
        ),
        (
            "symbolic link outside",
            lambda p: (p / "x.csv").symlink_to(p.parent.parent / "outside.csv"),
            "is a symbolic link to",
            None,
        ),
    ],
)
def test_hostile_files_stop_the_graph_with_a_named_contract(make_platform, case, writer, failure, gate):
    """In a real materialization: a refused file fails ``dataset_snapshot`` by name (never as a crash), a
    file that reads fails a named blocking gate; nothing downstream is built."""
    platform = make_platform(CONVERSION, min_rows=50)
    platform.landing.mkdir(parents=True, exist_ok=True)
    BASE.to_csv(platform.landing.parent.parent / "outside.csv", index=False)
    writer(platform.landing)
    result = platform.materialize("dataset_snapshot", "validated_features")
    assert not result.success
    messages = failure_messages(result)
    assert "crashed" not in messages, messages
    if failure:
        assert f"dataset_snapshot {platform.spec.name!r}" in messages and failure in messages, messages
        assert materialized(result) == []
    else:
        assert gate in failed_checks(result) and materialized(result) == ["dataset_snapshot"]
    assert_only_complete_snapshots(platform.paths.snapshots(platform.spec.name))
