"""gendetect.output: every format streams, writes atomically, finishes a partial file, and never fails on a path."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gendetect.atomic import temp_path
from gendetect.output import (
    FORMATS,
    OutputFormatError,
    RowWriter,
    escape_path,
    json_safe,
    output_format,
    render_table,
    safe_row,
    spreadsheet_safe,
    write_rows,
)

RAW_NAME = b"/data/caf\xe9 \xff.png"  # Latin-1 bytes: not UTF-8
SURROGATE_NAME = os.fsdecode(RAW_NAME)  # how Python hands that name over (surrogateescape)


def _rows(n: int = 3) -> list[dict]:
    out = [{"path": f"/x/{i}.png", "status": "ok", "p_fake": i / 10, "verdict": "real", "width": 8} for i in range(n)]
    out.append({"path": SURROGATE_NAME, "status": "error", "p_fake": None, "error": f"{SURROGATE_NAME}: broken"})
    return out


def _read(path: Path, fmt: str) -> list[dict]:
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    if fmt == "json":
        return json.loads(path.read_text(encoding="utf-8"))
    if fmt in ("csv", "tsv"):
        with open(path, encoding="utf-8", newline="") as f:  # newline="": a \r inside a cell stays in the cell
            return list(csv.DictReader(f, delimiter="\t" if fmt == "tsv" else ","))
    return pq.read_table(path).to_pylist()


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "tsv", "parquet"])
def test_every_format_writes_every_row_and_keeps_undecodable_names(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"r.{fmt}"
    assert write_rows(_rows(), out) == 4
    rows = _read(out, fmt)
    assert len(rows) == 4 and [r["path"] for r in rows[:3]] == ["/x/0.png", "/x/1.png", "/x/2.png"]
    bad = rows[3]
    assert bad["path"] == "/data/caf\\xe9 \\xff.png"  # printable, escaped
    assert bytes.fromhex(bad["path_bytes"]) == RAW_NAME  # and the exact bytes, recoverable
    assert "\\xe9" in bad["error"]
    assert not rows[0]["path_bytes"]  # empty for UTF-8 names
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left


def test_escape_path_round_trips() -> None:
    assert escape_path("café.png") == ("café.png", None)
    text, raw = escape_path(SURROGATE_NAME)
    assert raw is not None and bytes.fromhex(raw) == RAW_NAME and text.isprintable()
    assert escape_path(RAW_NAME) == (text, raw)


def test_json_safe_makes_strict_json() -> None:
    import numpy as np

    value = {"a": float("nan"), "b": np.float32(0.5), "c": [np.int64(3), float("inf")], "d": Path("/p"), "e": b"\x01"}
    assert (
        json.dumps(json_safe(value), allow_nan=False) == '{"a": null, "b": 0.5, "c": [3, null], "d": "/p", "e": "01"}'
    )


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_and_tsv_cells_never_start_a_formula(lead: str, tmp_path: Path) -> None:
    name = f"{lead}HYPERLINK(1).png"
    for fmt in ("csv", "tsv"):
        out = tmp_path / f"r.{fmt}"
        write_rows([{"path": name, "status": "ok", "p_fake": -0.5, "error": "=1+2"}], out)
        (row,) = _read(out, fmt)
        assert row["path"] == "'" + (name if fmt == "csv" else name.replace("\r", "\\r")) and row["error"] == "'=1+2"
        assert row["p_fake"] == "-0.5"  # numbers are not text cells
    assert spreadsheet_safe("photo.png") == "photo.png" and spreadsheet_safe(-3) == -3


def test_text_formats_stream_rows_to_a_temporary_file_renamed_at_the_end(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    out.write_text("an older result\n")
    with RowWriter(out, "jsonl") as w:
        assert not out.exists()  # the older output is gone as soon as this run starts writing
        w.write(_rows()[0])
        w.write(_rows()[1])
        tmp = temp_path(out)
        assert len(tmp.read_text().splitlines()) == 2  # on disk already, before the end
    assert not tmp.exists() and len(out.read_text().splitlines()) == 2 and w.complete


def test_csv_streams_after_its_first_rows_fix_the_columns(tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    with RowWriter(out, "csv", schema_rows=2) as w:
        w.write({"path": "/e.png", "status": "error", "error": "bad"})  # an error row first: no evidence columns
        w.write({"path": "/a.png", "status": "ok", "evidence": "c2pa"})
        w.write({"path": "/b.png", "status": "ok", "evidence": "none"})
        assert len(temp_path(out).read_text().splitlines()) == 4  # header + 3 rows, streamed
    rows = _read(out, "csv")
    assert rows[0]["evidence"] == "" and rows[1]["evidence"] == "c2pa"


def test_parquet_streams_row_groups_and_types_do_not_depend_on_the_first_rows(tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"
    rows = [{"path": f"/{i}.png", "status": "error", "p_fake": None, "findings": []} for i in range(10)]
    rows += [{"path": f"/{i}.png", "status": "ok", "p_fake": 0.5, "findings": [{"k": 1}]} for i in range(10, 25)]
    write_rows(rows, out, row_group_size=10)
    meta = pq.read_metadata(out)
    assert meta.num_row_groups == 3 and meta.num_rows == 25
    table = pq.read_table(out)
    assert str(table.schema.field("p_fake").type) == "double"
    assert json.loads(table.column("findings")[24].as_py()) == [{"k": 1}]  # nested values as JSON text
    assert "versions" in json.loads(table.schema.metadata[b"gendetect"])
    assert json.loads(meta.metadata[b"gendetect"])["complete"] is True


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "tsv", "parquet"])
def test_an_interrupted_writer_finishes_a_valid_partial_file(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"r.{fmt}"
    out.write_text("older")
    with pytest.raises(KeyboardInterrupt), RowWriter(out, fmt) as w:
        w.write_many(_rows(2))
        raise KeyboardInterrupt
    assert not w.complete and w.rows_written == 3
    assert len(_read(out, fmt)) == 3  # valid: a closed JSON array, a Parquet footer
    if fmt == "parquet":
        assert json.loads(pq.read_metadata(out).metadata[b"gendetect"])["complete"] is False


def test_output_format_from_suffix_and_unknown_suffixes() -> None:
    assert output_format(Path("r.tsv")) == "tsv" and output_format(Path("R.PARQUET")) == "parquet"
    assert output_format(None) == "table" and output_format(Path("r.xlsx"), "csv") == "csv"
    with pytest.raises(OutputFormatError, match=r"\.xlsx.*\.csv.*\.tsv"):
        output_format(Path("r.xlsx"))
    with pytest.raises(OutputFormatError, match="needs a file"):
        output_format(None, "parquet")
    with pytest.raises(OutputFormatError, match="valid formats"):
        output_format(None, "xml")
    assert set(FORMATS) == {"table", "json", "jsonl", "csv", "tsv", "parquet"}


def test_folder_as_output_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputFormatError, match="folder"):
        write_rows(_rows(), tmp_path, "csv")


def test_table_shows_markup_in_names_literally() -> None:
    buf = io.StringIO()
    rows = [safe_row(r) for r in _rows(1)]
    rows += [{"path": "/p/[bold]x.png", "status": "ok", "p_fake": 0.2, "verdict": "real"}]
    rows += [{"path": "/p/mk[/b].png", "status": "error", "error": "/p/mk[/b].png: [red]bad[/red]"}]
    render_table(rows, buf)
    text = buf.getvalue()
    assert "[bold]x.png" in text and "mk[/b].png" in text and "[red]bad[/red]" in text
    assert "caf\\xe9" in text


def test_table_keeps_long_paths_whole_and_wraps_the_note() -> None:
    # rich narrows the widest column first; a 90-character path beside a long note was folded mid-name
    path = "/data/" + "d" * 70 + "/mk[/b]-long-name.png"
    note = "no signal: the image is too small for pixel forensics, and more words that can wrap"
    buf = io.StringIO()
    render_table([{"path": path, "status": "ok", "p_fake": 0.5, "verdict": "uncertain", "evidence": note}], buf)
    lines = buf.getvalue().splitlines()
    assert any(path in line for line in lines)
    assert "forensics" in buf.getvalue() and not any(note in line for line in lines)  # the note wrapped


def test_table_folds_a_path_too_long_for_one_line_without_cutting_it() -> None:
    path = "/" + "p" * 300 + "/end.png"
    buf = io.StringIO()
    render_table([{"path": path, "status": "ok", "p_fake": 0.5, "verdict": "real"}], buf)
    cells = [line.split("│")[0].split("┃")[0].strip() for line in buf.getvalue().splitlines()[2:]]
    assert "".join(cells) == path


def test_stdout_destination(capsys: pytest.CaptureFixture[str]) -> None:
    write_rows(_rows(1), None, "jsonl")
    assert json.loads(capsys.readouterr().out.splitlines()[0])["path"] == "/x/0.png"
    with pytest.raises(OutputFormatError):
        RowWriter(None, "parquet")


def test_an_output_path_that_cannot_be_made_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(b"x")
    with pytest.raises(OutputFormatError, match=r"photo\.png is a file, not a folder"):
        write_rows(_rows(), tmp_path / "photo.png" / "x.csv", "csv")
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "sub").write_text("a file where the folder would go")
    with pytest.raises(OutputFormatError, match="cannot write .*sub"):
        write_rows(_rows(), locked / "sub" / "deeper" / "x.jsonl", "jsonl")
    # an OSError from the file system (here: a name too long) is named, not a traceback, for every format; Parquet
    # too, whose writer opens its file only at the first row group
    for fmt in ("csv", "parquet"):
        with pytest.raises(OutputFormatError, match="cannot write"):
            write_rows(_rows(), tmp_path / ("n" * 300 + f".{fmt}"), fmt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked", "photo.png"]  # no temporary file left


def test_cli_scan_to_an_unwritable_path_says_so_in_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gendetect.cli import main

    (tmp_path / "a.png").write_bytes(b"x")
    result = CliRunner().invoke(main, ["scan", str(tmp_path / "a.png"), "-o", str(tmp_path / "a.png" / "x.csv")])
    assert result.exit_code != 0
    assert "a.png is a file, not a folder" in result.output and "Traceback" not in result.output
    assert not isinstance(result.exception, OSError)


def test_a_writer_that_could_not_open_closes_without_a_second_error(tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(b"x")
    for target in (tmp_path / "photo.png" / "x.json", tmp_path):  # a file in the way; a folder as the output
        writer = RowWriter(target, "json")
        with pytest.raises(OutputFormatError):
            writer.write({"path": "a.png"})
        writer.close(complete=False)  # what a `with` block does on the way out: no AssertionError, no file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]
