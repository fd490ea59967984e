"""Compressed inputs as users keep them: .csv.gz streamed, zip archives read member by member."""
from __future__ import annotations

import gzip
import hashlib
import json
import zipfile

from components.data.ingest import ingest_paths
from components.data.inputs import discover_inputs

DDOS = "friday-ddos-1000.TrafficLabelling.csv"
MLCVE = "friday-afternoon-benign-head.MachineLearningCVE.csv"
MONDAY = "MachineLearningCVE/Monday-WorkingHours.pcap_ISCX.csv"
FRIDAY = "MachineLearningCVE/Friday-WorkingHours-Afternoon-DDos.pcap_ISCX.csv"


def test_csv_gz_is_read_as_a_stream_like_the_plain_file(real):
    lines = real.lines(rows=30)
    plain = real.write("day.csv", lines)
    packed = real.tmp / "packed" / "day.csv.gz"
    packed.parent.mkdir()
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    result = ingest_paths([str(packed)], real.cfg())
    [report] = result.reports
    assert (report.status, real.counts(report), report.source) == ("ok", (30, 30, 0), str(packed))
    assert report.sha256 == hashlib.sha256(packed.read_bytes()).hexdigest()  # the file as stored
    gz_rows = real.curated("day")
    ingest_paths([str(plain)], real.cfg())
    assert gz_rows.drop_columns(["source_file"]).equals(real.curated("day").drop_columns(["source_file"]))
    assert gz_rows["source_file"][0].as_py() == "day.csv.gz"


def test_corrupt_gzip_fails_with_one_line(real):
    data = gzip.compress(real.write("x.csv", real.lines(rows=200)).read_bytes())
    (real.tmp / "bad.csv.gz").write_bytes(data[: len(data) // 2])
    [report] = ingest_paths([str(real.tmp / "bad.csv.gz")], real.cfg()).reports
    assert (report.status, real.counts(report)) == ("failed", (0, 0, 0))
    assert report.error.startswith("corrupt gzip data: ")


def _published_zip(real):
    """A tiny MachineLearningCSV.zip: two day files (real rows), a README and macOS litter."""
    archive = real.tmp / "MachineLearningCSV.zip"
    friday = b"\r\n".join(real.lines(MLCVE, rows=12)) + b"\r\n"
    monday = b"\r\n".join(real.lines(MLCVE, rows=7)) + b"\r\n"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(FRIDAY, friday)
        zf.writestr(MONDAY, monday)
        zf.writestr("MachineLearningCVE/README.md", b"# notes\n")
        zf.writestr("__MACOSX/MachineLearningCVE/._Monday-WorkingHours.pcap_ISCX.csv", b"\x00\x05")
    return archive, {FRIDAY: friday, MONDAY: monday}


def test_zip_members_are_inputs_of_their_own(real):
    archive, contents = _published_zip(real)
    found = discover_inputs([str(real.tmp)])
    assert [(f.path.name, f.member) for f in found.files] == [
        ("MachineLearningCSV.zip", FRIDAY), ("MachineLearningCSV.zip", MONDAY)]
    assert found.notes == [
        "MachineLearningCSV.zip!MachineLearningCVE/README.md: not a .csv or .parquet member, skipped",
        ("MachineLearningCSV.zip!__MACOSX/MachineLearningCVE/._Monday-WorkingHours.pcap_ISCX.csv: "
         "macOS metadata, skipped")]
    result = ingest_paths([str(archive)], real.cfg())
    manifest = json.loads((real.tmp / "out" / "manifest.json").read_text())
    got = [(f["source"], f["status"], f["rows_in"], f["rows_curated"]) for f in manifest["files"]]
    assert got == [(f"{archive}!{MONDAY}", "ok", 7, 7), (f"{archive}!{FRIDAY}", "ok", 12, 12)]  # capture order
    for report in result.reports:
        member = report.source.split("!", 1)[1]
        assert report.sha256 == hashlib.sha256(contents[member]).hexdigest()
        assert report.one_line().startswith(f"MachineLearningCSV.zip!{member}: ok")
    assert real.curated("Monday-WorkingHours.pcap_ISCX")["source_file"][0].as_py() == \
        "Monday-WorkingHours.pcap_ISCX.csv"
    assert manifest["order"]["method"] == "capture day and part from file names"
    assert not list(real.tmp.rglob("MachineLearningCVE"))  # nothing unpacked to disk


def test_a_broken_archive_fails_with_the_reason(real):
    (real.tmp / "GeneratedLabelledFlows.zip").write_bytes(b"PK\x03\x04 but not really a zip")
    [report] = ingest_paths([str(real.tmp / "GeneratedLabelledFlows.zip")], real.cfg()).reports
    assert (report.status, report.error, real.counts(report)) == ("failed", "not a readable zip archive",
                                                                  (0, 0, 0))


def test_a_corrupt_member_fails_alone_and_has_no_digest(real):
    archive = real.tmp / "GeneratedLabelledFlows.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # stored, so that one flipped byte breaks the CRC
        zf.writestr("TrafficLabelling/Monday-WorkingHours.pcap_ISCX.csv", b"\n".join(real.lines(rows=40)))
        zf.writestr("TrafficLabelling/Tuesday-WorkingHours.pcap_ISCX.csv", b"\n".join(real.lines(rows=4)))
    data = bytearray(archive.read_bytes())
    data[5000] ^= 0xFF  # inside Monday's content
    archive.write_bytes(bytes(data))
    result = ingest_paths([str(archive)], real.cfg())
    got = {r.name: (r.status, r.error, r.sha256 is None, real.counts(r)) for r in result.reports}
    assert got == {
        "Tuesday-WorkingHours.pcap_ISCX.csv": ("ok", None, False, (4, 4, 0)),
        "Monday-WorkingHours.pcap_ISCX.csv": (
            "failed", ("corrupt archive member: Bad CRC-32 for file "
                       "'TrafficLabelling/Monday-WorkingHours.pcap_ISCX.csv'"), True, (0, 0, 0)),
    }
