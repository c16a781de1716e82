"""Query times of the lake in DuckDB, against the layouts it replaces (scripts/lake-query-bench.sh
runs this with the DuckDB that scripts/check-deploy.sh pins).

  lake_query_bench.py --kinetick BIN --work DIR [--ticks N] [--runs N]

1. `kinetick demo --ticks N --symbols 1000 --shards 4 --out DIR/demo` writes the lake as the
   pipeline does: default file sizing, so a file per shard that grows over the shard's barriers,
   a row group each (no KINETICK_* settings; its ticks table, about 0.9 KB a tick, is deleted
   at once).
2. From those files, with DuckDB, the same rows in two other layouts:
   - as written before: cut as the pipeline cut its files before compaction, whatever it writes
     now: a shard's rows in position order, a file per 20,000 of them (a checkpoint at the
     default `checkpoint.max-records`) and date, sorted by symbol then event time, one row group;
     written with Snappy and DuckDB's plain and dictionary encodings, no BYTE_STREAM_SPLIT or
     deltas. It stands for the lake's earlier writer (Snappy, plain doubles, dictionaries for
     `symbol`, `trend` and `shard_id`: `earlier_properties` in benches/lake_size.rs); DuckDB
     also makes dictionaries of doubles with few distinct values, and writes times in
     microseconds.
   - one JSON object per tick, JSON lines in files of up to 128 MiB per date in event-time order,
     as a Firehose delivery stream holds the records: the producer's fields under its names
     (`timestamp` in RFC 3339) and every column the pipeline computes, nulls written as null.
   The pipeline's own files are kept too (hard links): this encoding, as many files as it writes.
3. `kinetick compact --lake DIR/demo --date D` for each date: the lake as compacted.
4. For each layout: files, files per million ticks, bytes, bytes a tick; a check that it holds
   the same rows (count, and the sum of every row's hash); then each query runs RUNS + 1 times
   on each layout, warm (the first run is not timed), the layouts in turn so that load from
   other processes falls on each alike, and the median wall time is printed, with the median
   CPU time of DuckDB's threads (steadier than wall time on a busy machine). The queries are
   the four that deploy/ecs/check_athena.py requires of the Athena named queries (the seeds'
   queries), read from that file, and one symbol over one hour with the filters an Athena user would
   write (`dt`, `symbol`, `event_time`). Each layout is a view with the Glue table's columns,
   read with hive partitioning (`dt` a string, as in Glue). A query's answer must be the same
   over every layout: rows in any order unless ordered, doubles to 1e-12 relative (sums run in
   another order), ties at a LIMIT's edge may differ, and `LIMIT` without `ORDER BY` may return
   any rows, so only their count and columns are compared.
5. Prints a summary to paste into docs/performance.md.

The files are local and in the page cache: the times are DuckDB's work (planning, opening and
decoding files), not S3's latency per request, which Athena also pays per file.
"""

import argparse
import ast
import datetime
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
SEEDS_FILE = ROOT / "deploy" / "ecs" / "check_athena.py"
SYMBOLS = 1000
SHARDS = 4
JSON_FILE_SIZE = "128MiB"
# Rows of a file as the pipeline wrote them before compaction: a shard's records from one
# checkpoint to the next (the default `checkpoint.max-records`).
EARLIER_ROWS_PER_FILE = 20_000
# DuckDB's memory: the sorts that lay out the layouts spill past it (into DIR/duckdb.tmp); the
# page cache, not DuckDB, holds the files the queries read.
MEMORY_LIMIT = "8GB"
# Relative tolerance of doubles between layouts (sums of many values run in another order).
REL_TOLERANCE = 1e-12

# Short names of the seeds' queries, by their text in check_athena.py.
SEED_LABELS = {
    "SELECT * FROM <table> LIMIT 10;": "first rows (`SELECT * ... LIMIT 10`)",
    "SELECT symbol, price, previous_close, (price - previous_close) AS price_change FROM <table> "
    "ORDER BY price_change DESC LIMIT 5;": "top 5 price changes",
    "SELECT symbol, AVG(volume) AS avg_volume FROM <table> GROUP BY symbol;": "average volume per symbol",
    "SELECT symbol, price, previous_close, ROUND(((price - previous_close) / previous_close) * 100, "
    "2) AS change_percent FROM <table> WHERE ABS(((price - previous_close) / previous_close) * 100) "
    "> 5;": "moves over 5 %",
}


class Layout:
    def __init__(self, key, label, root, kind, note):
        self.key, self.label, self.root, self.kind, self.note = key, label, root, kind, note

    @property
    def view(self):
        return f"ticks_{self.key}"

    def files(self):
        pattern = "*.parquet" if self.kind == "parquet" else "*.json"
        return sorted((self.root / "ticks").glob(f"dt=*/{pattern}"))


def fail(message):
    sys.exit(f"lake-query-bench: {message}")


def step(message):
    print(f"== {message}", flush=True)


def seed_queries():
    """REQUIRED_QUERIES of check_athena.py, read without importing it (it needs PyYAML)."""
    tree = ast.parse(SEEDS_FILE.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "REQUIRED_QUERIES" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    fail(f"no REQUIRED_QUERIES in {SEEDS_FILE}")


def quote(identifier):
    return '"' + identifier.replace('"', '""') + '"'


def literal(text):
    return "'" + text.replace("'", "''") + "'"


def kinetick_env():
    """This environment without KINETICK_* settings (kinetick reads each as a setting)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINETICK_")}
    env["RUST_LOG"] = "error"
    return env


def run_demo(kinetick, demo_dir, ticks):
    command = [kinetick, "demo", "--no-progress", "--ticks", str(ticks), "--symbols", str(SYMBOLS),
               "--shards", str(SHARDS), "--out", str(demo_dir)]
    print("  " + " ".join(command[1:]), flush=True)
    done = subprocess.run(command, env=kinetick_env(), capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"kinetick demo failed:\n{done.stdout}{done.stderr}")
    print("".join(f"  {line}\n" for line in done.stdout.splitlines() if line.strip()), end="")
    # The ticks table (about 0.8 KB a tick), which no layout needs.
    shutil.rmtree(demo_dir / "table", ignore_errors=True)


def lake_columns(con, files):
    """The lake's columns and DuckDB types, in order, from the pipeline's files."""
    described = con.execute(
        f"DESCRIBE SELECT * FROM read_parquet({literal(str(files[0]))}, hive_partitioning = false)"
    ).fetchall()
    return [(name, kind) for name, kind, *_ in described]


def write_earlier(con, source_root, layout, columns):
    """The rows cut as the pipeline cut its files before: a shard's records in position order, a
    file per EARLIER_ROWS_PER_FILE of them (a checkpoint) and date, sorted by symbol then time."""
    names = ", ".join(quote(name) for name, _ in columns)
    position = "length(sequence_number), sequence_number, sub_sequence_number"
    con.execute(
        f"CREATE TEMP TABLE earlier AS SELECT {names}, dt, (row_number() OVER (PARTITION BY "
        f"shard_id ORDER BY {position}) - 1) // {EARLIER_ROWS_PER_FILE} AS part "
        f"FROM read_parquet({literal(str(source_root / '*' / '*.parquet'))}, "
        f"hive_partitioning = true, hive_types = {{'dt': 'VARCHAR'}}) ORDER BY shard_id, part, dt"
    )
    files = con.execute("SELECT DISTINCT shard_id, part, dt FROM earlier ORDER BY ALL").fetchall()
    for shard, part, date in files:
        target = layout.root / "ticks" / f"dt={date}" / f"{shard}-{part:06d}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"COPY (SELECT {names} FROM earlier WHERE shard_id = {literal(shard)} AND part = {part} "
            f"AND dt = {literal(date)} ORDER BY symbol, event_time, {position}) "
            f"TO {literal(str(target))} (FORMAT parquet, COMPRESSION snappy)"
        )
    con.execute("DROP TABLE earlier")


def write_json(con, source_root, layout, columns):
    times = {"event_time": "timestamp", "arrival_time": "arrival_time"}
    select = ", ".join(
        f"strftime({quote(name)}, '%Y-%m-%dT%H:%M:%S.%gZ') AS {quote(times[name])}"
        if name in times else quote(name)
        for name, _ in columns
    )
    for date_dir in sorted(source_root.glob("dt=*")):
        target = layout.root / "ticks" / date_dir.name
        target.parent.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"COPY (SELECT {select} FROM read_parquet({literal(str(date_dir / '*.parquet'))}, "
            f"hive_partitioning = false) ORDER BY event_time, shard_id, sequence_number, "
            f"sub_sequence_number) TO {literal(str(target))} "
            f"(FORMAT json, FILE_SIZE_BYTES '{JSON_FILE_SIZE}')"
        )


def compact(kinetick, demo_dir):
    dates = sorted(d.name.removeprefix("dt=") for d in (demo_dir / "ticks").glob("dt=*"))
    for date in dates:
        command = [kinetick, "compact", "--no-progress", "--lake", str(demo_dir), "--date", date]
        done = subprocess.run(command, env=kinetick_env(), capture_output=True, text=True)
        if done.returncode != 0:
            fail(f"kinetick compact failed on {date}:\n{done.stdout}{done.stderr}")
        print("".join(f"  {line}\n" for line in done.stdout.splitlines() if line.strip()), end="")


def create_view(con, layout, columns):
    hive = "hive_partitioning = true, hive_types = {'dt': 'VARCHAR'}"
    pattern = "*.parquet" if layout.kind == "parquet" else "*.json"
    glob = literal(str(layout.root / "ticks" / "*" / pattern))
    if layout.kind == "parquet":
        source = f"read_parquet({glob}, {hive})"
        select = ", ".join(quote(name) for name, _ in columns)
    else:
        names = {"event_time": "timestamp"}
        types = ", ".join(f"{literal(names.get(n, n))}: {literal(t)}" for n, t in columns)
        source = (f"read_json({glob}, format = 'newline_delimited', {hive}, "
                  f"columns = {{{types}}})")
        select = ", ".join(
            f"{quote(names[n])} AS {quote(n)}" if n in names else quote(n) for n, _ in columns
        )
    con.execute(f"CREATE VIEW {layout.view} AS SELECT {select}, dt FROM {source}")


def content(con, layout, columns):
    """Rows, and the sum of every row's hash: the same rows in every layout give the same."""
    everything = ", ".join(quote(name) for name, _ in columns + [("dt", "")])
    return con.execute(
        f"SELECT count(*), sum(hash({everything})::HUGEINT) FROM {layout.view}"
    ).fetchone()


def symbol_hour(con, layout):
    """One symbol over one hour: AAPL if the market has it, in the hour around the middle of the
    ticks' event times."""
    symbols = {s for (s,) in con.execute(f"SELECT DISTINCT symbol FROM {layout.view}").fetchall()}
    symbol = "AAPL" if "AAPL" in symbols else sorted(symbols)[len(symbols) // 2]
    low, high = con.execute(
        f"SELECT epoch_ms(min(event_time)), epoch_ms(max(event_time)) FROM {layout.view}"
    ).fetchone()
    middle = datetime.datetime.fromtimestamp((low + high) / 2000, datetime.timezone.utc)
    start = middle.replace(minute=0, second=0, microsecond=0)
    end = start + datetime.timedelta(hours=1)
    label = f"one symbol, one hour ({symbol}, {start:%H:%M}-{end:%H:%M} UTC)"
    return label, (
        "SELECT count(*) AS ticks, avg(price) AS avg_price, min(price) AS low, max(price) AS high "
        f"FROM <table> WHERE dt = '{start:%Y-%m-%d}' AND symbol = {literal(symbol)} "
        f"AND event_time >= TIMESTAMP '{start:%Y-%m-%d %H:%M:%S}' "
        f"AND event_time < TIMESTAMP '{end:%Y-%m-%d %H:%M:%S}';"
    )


def fetchable(con, sql):
    """The query with its TIMESTAMP WITH TIME ZONE columns cast to TIMESTAMP (UTC): DuckDB's
    Python client needs pytz to return the former."""
    body = sql.rstrip().rstrip(";")
    described = con.execute(f"DESCRIBE {body}").fetchall()
    if not any(kind == "TIMESTAMP WITH TIME ZONE" for _, kind, *_ in described):
        return body
    select = ", ".join(
        f"CAST({quote(n)} AS TIMESTAMP) AS {quote(n)}"
        if kind == "TIMESTAMP WITH TIME ZONE" else quote(n)
        for n, kind, *_ in described
    )
    return f"SELECT {select} FROM ({body}) AS answer"


def answer(con, sql):
    rows = con.execute(sql).fetchall()
    return [d[0] for d in con.description], rows


def run_once(con, sql):
    """Wall and CPU time of one run in milliseconds (CPU: every thread of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    con.execute(sql).fetchall()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def same_value(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=REL_TOLERANCE, abs_tol=0.0)
    return a == b


def same_rows(a, b):
    return len(a) == len(b) and all(
        len(x) == len(y) and all(same_value(u, v) for u, v in zip(x, y)) for x, y in zip(a, b)
    )


def sort_key(row):
    return tuple((value is None, value if value is not None else 0) for value in row)


def differences(sql, reference, answer):
    """Why ANSWER is not REFERENCE's answer to SQL, or None when they agree."""
    (names, rows), (other_names, other_rows) = reference, answer
    if names != other_names:
        return f"columns {other_names}, expected {names}"
    text = sql.upper()
    ordered = "ORDER BY" in text
    if "LIMIT" in text and not ordered:
        # Any rows: only how many.
        if len(rows) == len(other_rows):
            return None
        return f"{len(other_rows)} rows, expected {len(rows)}"
    if ordered:
        key = sql[text.index("ORDER BY") + len("ORDER BY"):].split()[0]
        k = names.index(key)
        if not same_rows([[r[k]] for r in rows], [[r[k]] for r in other_rows]):
            return f"{key} {[r[k] for r in other_rows]}, expected {[r[k] for r in rows]}"
        if "LIMIT" in text and rows:
            # Rows tied with the last one may be any of the ties.
            edge = rows[-1][k]
            rows = [r for r in rows if r[k] != edge]
            other_rows = [r for r in other_rows if r[k] != edge]
    if not same_rows(sorted(rows, key=sort_key), sorted(other_rows, key=sort_key)):
        return f"{len(other_rows)} rows that differ from the {len(rows)} expected"
    return None


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kinetick", required=True)
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--ticks", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.runs < 1:
        fail("--runs must be at least 1")
    started = time.perf_counter()
    steps = []

    def done(name, since):
        steps.append((name, time.perf_counter() - since))
        print(f"  ({steps[-1][1]:.0f} s)", flush=True)

    work = args.work.resolve()
    demo_dir = work / "demo"
    layouts = {
        "compacted": Layout("compacted", "this lake (compacted)", demo_dir, "parquet",
                            "`kinetick compact`'s files, default `--target-size` (128 MB)"),
        "earlier": Layout("earlier", "as written before", work / "earlier", "parquet",
                          f"a file per shard, {EARLIER_ROWS_PER_FILE:,} positions and date; Snappy, "
                          "plain and dictionary encodings (DuckDB's writer)"),
        "json": Layout("json", "JSON per tick", work / "json", "json",
                       "JSON lines, files of up to 128 MiB per date"),
        "pipeline": Layout("pipeline", "pipeline files, uncompacted", work / "pipeline", "parquet",
                           "the pipeline's files before compaction: this encoding"),
    }
    for path in [demo_dir] + [layout.root for key, layout in layouts.items() if key != "compacted"]:
        shutil.rmtree(path, ignore_errors=True)

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute(f"SET temp_directory = {literal(str(work / 'duckdb.tmp'))}")

    step(f"kinetick demo: {args.ticks:,} ticks")
    since = time.perf_counter()
    run_demo(args.kinetick, demo_dir, args.ticks)
    done("demo", since)
    source_root = demo_dir / "ticks"
    pipeline_files = sorted(source_root.glob("dt=*/*.parquet"))
    if not pipeline_files:
        fail(f"the demo wrote no Parquet files under {source_root}")
    columns = lake_columns(con, pipeline_files)

    step("the pipeline's files, kept as they are (hard links)")
    for file in pipeline_files:
        target = layouts["pipeline"].root / "ticks" / file.relative_to(source_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(file, target)

    step(f"as written before: a file per shard, {EARLIER_ROWS_PER_FILE:,} positions and date, Snappy, "
         "no BYTE_STREAM_SPLIT or deltas")
    since = time.perf_counter()
    write_earlier(con, source_root, layouts["earlier"], columns)
    done("earlier layout", since)

    step("one JSON object per tick: JSON lines, files of up to 128 MiB per date")
    since = time.perf_counter()
    write_json(con, source_root, layouts["json"], columns)
    done("JSON layout", since)

    step("kinetick compact, each date")
    since = time.perf_counter()
    compact(args.kinetick, demo_dir)
    done("compact", since)

    order = ["compacted", "earlier", "json", "pipeline"]
    step("layouts: files, bytes, rows")
    sizes, reference = {}, None
    for key in order:
        layout = layouts[key]
        create_view(con, layout, columns)
        files = layout.files()
        rows, digest = content(con, layout, columns)
        if reference is None:
            reference = (rows, digest)
        elif (rows, digest) != reference:
            fail(f"{layout.label} holds other rows than {layouts[order[0]].label}: "
                 f"{rows} rows, digest {digest}; expected {reference[0]} rows, digest {reference[1]}")
        size = sum(f.stat().st_size for f in files)
        sizes[key] = (len(files), size)
        print(f"  {layout.label:<30} {len(files):>6} files  {size / 1e6:>10.2f} MB  "
              f"{size / rows:>7.1f} bytes a tick  {rows:,} rows", flush=True)
    rows = reference[0]

    queries = [(SEED_LABELS.get(q, q[:40]), q) for q in seed_queries()]
    queries.append(symbol_hour(con, layouts["compacted"]))

    step(f"queries: median of {args.runs} warm runs after one untimed, the layouts in turn, "
         "milliseconds of wall time (CPU time of DuckDB's threads)")
    since = time.perf_counter()
    load_before = os.getloadavg()[0]
    times = {}
    for label, sql in queries:
        print(f"  {label}: {sql}", flush=True)
        texts = {key: fetchable(con, sql.replace("<table>", layouts[key].view)) for key in order}
        answers = {key: answer(con, texts[key]) for key in order}
        for key in order:
            why = differences(sql, answers[order[0]], answers[key])
            if why:
                fail(f"{label}: {layouts[key].label} answers otherwise than "
                     f"{layouts[order[0]].label}: {why}\n  {sql}")
        # In turn, so that another process's load falls on every layout alike.
        samples = {key: [] for key in order}
        for _ in range(args.runs):
            for key in order:
                samples[key].append(run_once(con, texts[key]))
        for key in order:
            wall = statistics.median(w for w, _ in samples[key])
            cpu = statistics.median(c for _, c in samples[key])
            times[(label, key)] = (wall, cpu)
            print(f"    {layouts[key].label:<30} {wall:>9.1f} ms ({cpu:.0f} ms CPU; runs "
                  f"{min(w for w, _ in samples[key]):.1f}-{max(w for w, _ in samples[key]):.1f} ms)  "
                  f"{len(answers[key][1])} rows", flush=True)
    done("queries", since)
    load_after = os.getloadavg()[0]
    total = time.perf_counter() - started

    step("summary")
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    print(f"`scripts/lake-query-bench.sh`: `kinetick demo --ticks {args.ticks} --symbols {SYMBOLS} "
          f"--shards {SHARDS}`, {rows:,} rows, DuckDB {duckdb.__version__}, "
          f"{threads} threads, memory limit {MEMORY_LIMIT}; "
          f"every layout holds the same rows and gives the same answers.\n")
    print(table(
        ["layout", "files", "files per million ticks", "MB", "bytes a tick", "what"],
        [[layouts[k].label, f"{sizes[k][0]:,}", f"{sizes[k][0] * 1e6 / rows:.1f}",
          f"{sizes[k][1] / 1e6:,.1f}", f"{sizes[k][1] / rows:.1f}", layouts[k].note] for k in order],
    ))
    print()
    print(table(
        [f"query: ms (CPU ms), median of {args.runs} warm runs"] + [layouts[k].label for k in order],
        [[label] + [f"{times[(label, k)][0]:,.0f} ({times[(label, k)][1]:,.0f})" for k in order]
         for label, _ in queries],
    ))
    print()
    print(f"The one-symbol query: `{queries[-1][1]}`")
    print("Steps: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in steps)
          + f"; in all {total / 60:.1f} min (without the release build). Load average (1 min) "
          f"when the queries started {load_before:.1f}, when they ended {load_after:.1f}.")


if __name__ == "__main__":
    main()
