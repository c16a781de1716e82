"""The answers `kinetick report` gives to the four seed queries against DuckDB's on the same lake.

  check_report.py LAKE_DIR REPORT_DIR

LAKE_DIR is what `kinetick demo --out LAKE_DIR` wrote (lake prefix ""), REPORT_DIR what
`kinetick report --lake LAKE_DIR --out REPORT_DIR` wrote from it. The check fails unless:
- the report's four SQL texts are the Athena named queries check_athena.py requires, on `t`;
- DuckDB, running each of them on `t` = the Parquet files of the report's dates, gives the
  same answer as summary.json:
  - `SELECT * ... LIMIT 10`: ten rows with the report's columns; and the report's ten rows are
    DuckDB's first ten in the order the report names (LIMIT alone may return any ten);
  - the top 5 price changes: the same price changes in the same order, and the same rows once
    ties are ordered as the report orders them;
  - the average volume of every symbol (to 1e-12 relative: DuckDB may sum in another order);
  - the moves over 5 %: the same rows, in any order (the query has no ORDER BY).
report.html, and a chart file for each chart summary.json names, must exist too.
"""

import json
import math
import os
import sys

import duckdb

from check_athena import REQUIRED_QUERIES

# The report's order of `SELECT *` (summary.json's `order` says the same in words).
FIRST_ROWS_ORDER = "event_time, symbol, shard_id, sequence_number, sub_sequence_number"
# The report's tie-break of the top price changes: rows equal in all of these are identical.
TOP_CHANGES_ORDER = "price_change DESC NULLS LAST, symbol, price, previous_close"


def fail(message):
    sys.exit(f"check_report: {message}")


def plain(value):
    """A DuckDB value as summary.json writes it: times as ISO 8601 UTC with milliseconds."""
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return value


def rows_of(con, sql):
    return [[plain(v) for v in row] for row in con.execute(sql).fetchall()]


def same(a, b, rel=0.0):
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return a == b or math.isclose(a, b, rel_tol=rel, abs_tol=0.0)
    return a == b


def same_rows(report, duck, rel=0.0):
    return len(report) == len(duck) and all(
        len(r) == len(d) and all(same(x, y, rel) for x, y in zip(r, d)) for r, d in zip(report, duck)
    )


def differ(name, report, duck, rel=0.0):
    at = next(
        (i for i, (r, d) in enumerate(zip(report, duck)) if not same_rows([r], [d], rel)),
        min(len(report), len(duck)),
    )
    shown = lambda rows: rows[at] if at < len(rows) else "no row"  # noqa: E731
    fail(
        f"{name}: the report ({len(report)} rows) and DuckDB ({len(duck)} rows) differ at row "
        f"{at}\n  report: {shown(report)}\n  duckdb: {shown(duck)}"
    )


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    lake_dir, report_dir = (arg.rstrip("/") for arg in sys.argv[1:])
    with open(os.path.join(report_dir, "summary.json")) as file:
        summary = json.load(file)
    if not os.path.isfile(os.path.join(report_dir, "report.html")):
        fail(f"no report.html in {report_dir}")
    for chart in summary["charts"]:
        if not os.path.isfile(os.path.join(report_dir, chart["file"])):
            fail(f"chart {chart['file']} of {chart['symbol']} is missing")
    answers = summary["seed_queries"]
    seeds = [q.replace("<table>", "t").rstrip(";") for q in REQUIRED_QUERIES]
    names = ["first_rows", "top_price_changes", "avg_volume", "moves_over_5_percent"]
    for name, sql in zip(names, seeds):
        if answers[name]["sql"] != sql:
            fail(f"{name}: the report answers {answers[name]['sql']!r}, not the seed query {sql!r}")

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    dates = ", ".join(f"'{d}'" for d in summary["dates"])
    # Times as Athena's `timestamp` (UTC, no zone), as check_athena.py's view casts them.
    con.execute(
        "CREATE VIEW t AS SELECT * REPLACE (CAST(event_time AS TIMESTAMP) AS event_time, "
        "CAST(arrival_time AS TIMESTAMP) AS arrival_time) "
        f"FROM read_parquet('{lake_dir}/ticks/*/*.parquet', hive_partitioning = true, "
        f"hive_types = {{'dt': VARCHAR}}) WHERE dt IN ({dates})"
    )
    rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
    if rows != summary["rows"]:
        fail(f"the report read {summary['rows']} rows of {summary['dates']}, DuckDB finds {rows}")

    first, top, average, moves = (answers[name] for name in names)
    any_ten = con.execute(seeds[0])
    columns = [d[0] for d in any_ten.description]
    if columns != first["columns"] or len(any_ten.fetchall()) != 10:
        fail(f"SELECT * LIMIT 10: DuckDB gives 10 rows of {columns}, the report {first['columns']}")
    duck = rows_of(con, f"SELECT * FROM t ORDER BY {FIRST_ROWS_ORDER} LIMIT 10")
    if not same_rows(first["rows"], duck):
        differ("first rows", first["rows"], duck)

    duck = rows_of(con, seeds[1])
    if [r[3] for r in top["rows"]] != [r[3] for r in duck]:
        differ("top price changes", top["rows"], duck)
    duck = rows_of(con, seeds[1].replace("price_change DESC", TOP_CHANGES_ORDER))
    if not same_rows(top["rows"], duck):
        differ("top price changes (ties ordered)", top["rows"], duck)

    duck = rows_of(con, seeds[2] + " ORDER BY symbol")
    if not same_rows(average["rows"], duck, rel=1e-12):
        differ("average volume", average["rows"], duck, rel=1e-12)

    duck = rows_of(con, seeds[3])
    key = lambda row: tuple((v is None, v) for v in row)  # noqa: E731
    report_moves, duck = sorted(moves["rows"], key=key), sorted(duck, key=key)
    if moves["count"] != len(duck) or not same_rows(report_moves, duck):
        differ("moves over 5 % (both sorted)", report_moves, duck)

    print(
        f"check_report: the report's four seed answers equal DuckDB's over {rows} rows of "
        f"{', '.join(summary['dates'])} ({len(average['rows'])} symbols, {moves['count']} moves "
        f"over 5 %); report.html and {len(summary['charts'])} charts written"
    )


if __name__ == "__main__":
    main()
