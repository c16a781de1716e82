"""The Glue table and the Athena named queries of deploy/ecs/template.yaml against a real lake.

  check_athena.py TEMPLATE DIR

DIR is what `kinetick demo --out DIR` wrote (with the template's default LakePrefix, ""). The
check fails unless:
- the Glue table `ticks` has the partition projection the lake's keys need (dt, yyyy-MM-dd,
  days, storage.location.template = the table's location + dt=${dt}/);
- its columns are the Parquet files' columns, same names, same order, and each Glue type is
  what Athena reads the Parquet type as (timestamp = INT64 TIMESTAMP_MILLIS, UTC-adjusted);
- every file's dt partition is the UTC date of its ticks' event time;
- every named query runs unchanged (after CloudFormation's substitution) in DuckDB on a view
  named like the Glue table, `<database>.ticks`, that selects exactly the Glue columns cast to
  the DuckDB types of the Glue types; the four queries below are among them and return rows.

DuckDB stands in for Athena (Trino): the required queries use only syntax both accept.
"""

import re
import sys

import duckdb

from cfn_template import Resolver, load, resources_of_type

# The queries the lake must answer, `<table>` being `<database>.ticks`.
REQUIRED_QUERIES = [
    "SELECT * FROM <table> LIMIT 10;",
    "SELECT symbol, price, previous_close, (price - previous_close) AS price_change FROM <table> ORDER BY price_change DESC LIMIT 5;",
    "SELECT symbol, AVG(volume) AS avg_volume FROM <table> GROUP BY symbol;",
    "SELECT symbol, price, previous_close, ROUND(((price - previous_close) / previous_close) * 100, 2) AS change_percent FROM <table> WHERE ABS(((price - previous_close) / previous_close) * 100) > 5;",
]

PROJECTION = {
    "projection.enabled": "true",
    "projection.dt.type": "date",
    "projection.dt.format": "yyyy-MM-dd",
    "projection.dt.range": "2020-01-01,NOW",
    "projection.dt.interval": "1",
    "projection.dt.interval.unit": "DAYS",
}

# Glue (Hive) type -> the DuckDB type a view casts to.
DUCKDB_TYPE = {
    "string": "VARCHAR",
    "double": "DOUBLE",
    "float": "FLOAT",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}

# Glue type -> DuckDB types the Parquet column may be read as for Athena to read it as that type.
PARQUET_READ_AS = {
    "string": {"VARCHAR"},
    "double": {"DOUBLE"},
    "float": {"FLOAT"},
    "bigint": {"BIGINT"},
    "int": {"INTEGER"},
    "boolean": {"BOOLEAN"},
    "timestamp": {"TIMESTAMP WITH TIME ZONE", "TIMESTAMP"},
    "date": {"DATE"},
}

MAIN_DIR_GLOB = "{dir}/{prefix}ticks/*/*.parquet"


def fail(message):
    sys.exit(f"check_athena: {message}")


def quote(identifier):
    return '"' + identifier.replace('"', '""') + '"'


def glue_table(template, resolver):
    tables = [
        resolver.resolve(r["Properties"])
        for r in resources_of_type(template, "AWS::Glue::Table").values()
    ]
    ticks = [t for t in tables if t["TableInput"]["Name"] == "ticks"]
    if len(ticks) != 1:
        fail("expected one Glue table named ticks")
    return ticks[0]


def check_table_definition(table, prefix):
    table_input = table["TableInput"]
    if table_input.get("TableType") != "EXTERNAL_TABLE":
        fail("the Glue table is not an EXTERNAL_TABLE")
    params = table_input.get("Parameters", {})
    for key, value in PROJECTION.items():
        if params.get(key) != value:
            fail(f"table parameter {key} is {params.get(key)!r}, expected {value!r}")
    partitions = [(k["Name"], k["Type"]) for k in table_input.get("PartitionKeys", [])]
    if partitions != [("dt", "string")]:
        fail(f"partition keys are {partitions}, expected [('dt', 'string')]")
    storage = table_input["StorageDescriptor"]
    serde = storage["SerdeInfo"]["SerializationLibrary"]
    if serde != "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe":
        fail(f"SerDe {serde} is not the Parquet SerDe")
    if "Parquet" not in storage["InputFormat"] or "Parquet" not in storage["OutputFormat"]:
        fail("input/output formats are not Parquet")
    bucket_url = "s3://<LakeBucket>/"
    location = storage["Location"]
    template_location = params.get("storage.location.template", "")
    if location != f"{bucket_url}{prefix}ticks/":
        fail(f"table location {location} is not s3://bucket/{prefix}ticks/ (where kinetick writes)")
    if template_location != location + "dt=${dt}/":
        fail(f"storage.location.template {template_location} is not {location}dt=${{dt}}/")
    return [(c["Name"], c["Type"]) for c in storage["Columns"]]


def check_parquet_schema(con, glob, columns):
    described = con.execute(
        f"DESCRIBE SELECT * FROM read_parquet('{glob}', hive_partitioning = true)"
    ).fetchall()
    parquet = [(name, kind) for name, kind, *_ in described if name != "dt"]
    names = [name for name, _ in parquet]
    glue_names = [name for name, _ in columns]
    if names != glue_names:
        missing = [n for n in names if n not in glue_names]
        extra = [n for n in glue_names if n not in names]
        fail(
            f"Glue columns differ from the Parquet columns: missing {missing}, not in the files "
            f"{extra}" + ("" if missing or extra else f", order {glue_names} vs {names}")
        )
    schema = {
        row[0]: row[1:]
        for row in con.execute(
            f"SELECT DISTINCT name, type, converted_type, logical_type FROM parquet_schema('{glob}')"
        ).fetchall()
    }
    for (name, glue_type), (_, read_as) in zip(columns, parquet):
        if glue_type not in PARQUET_READ_AS:
            fail(f"column {name}: Glue type {glue_type} is not one this check knows")
        if read_as not in PARQUET_READ_AS[glue_type]:
            fail(f"column {name}: Glue says {glue_type}, the Parquet files hold {read_as}")
        if glue_type == "timestamp":
            physical, converted, logical = schema[name]
            if physical != "INT64" or converted != "TIMESTAMP_MILLIS" or "isAdjustedToUTC=1" not in (logical or ""):
                fail(f"column {name}: {physical} {converted} {logical}, expected INT64 TIMESTAMP_MILLIS UTC")


def create_view(con, database, glob, columns):
    selected = ",\n  ".join(
        f"CAST({quote(name)} AS {DUCKDB_TYPE[kind]}) AS {quote(name)}" for name, kind in columns + [("dt", "string")]
    )
    con.execute(f"CREATE SCHEMA {quote(database)}")
    con.execute(
        f"CREATE VIEW {quote(database)}.ticks AS SELECT\n  {selected}\n"
        f"FROM read_parquet('{glob}', hive_partitioning = true)"
    )


def check_partitions(con, database):
    bad_format = con.execute(
        f"SELECT DISTINCT dt FROM {quote(database)}.ticks WHERE NOT regexp_matches(dt, '^\\d{{4}}-\\d{{2}}-\\d{{2}}$')"
    ).fetchall()
    if bad_format:
        fail(f"dt values not in yyyy-MM-dd: {bad_format[:5]}")
    wrong_day = con.execute(
        f"SELECT count(*) FROM {quote(database)}.ticks WHERE strftime(event_time, '%Y-%m-%d') <> dt"
    ).fetchone()[0]
    if wrong_day:
        fail(f"{wrong_day} rows sit in a dt partition other than their event date (UTC)")


def named_queries(template, resolver, database):
    queries = {}
    for logical_id, resource in resources_of_type(template, "AWS::Athena::NamedQuery").items():
        props = resolver.resolve(resource["Properties"])
        if props.get("Database") != database:
            fail(f"named query {props['Name']} runs in database {props.get('Database')}, not {database}")
        queries[props["Name"]] = props["QueryString"]
    return queries


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    template, out_dir = load(sys.argv[1]), sys.argv[2].rstrip("/")
    resolver = Resolver(template)
    prefix = resolver.ref("LakePrefix")
    table = glue_table(template, resolver)
    database = table["DatabaseName"]
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", database):
        fail(f"database name {database!r} would need quoting in Athena")
    columns = check_table_definition(table, prefix)

    con = duckdb.connect()
    # Athena shows timestamps in UTC; so does the view's cast from TIMESTAMP WITH TIME ZONE.
    con.execute("SET TimeZone = 'UTC'")
    glob = MAIN_DIR_GLOB.format(dir=out_dir, prefix=prefix)
    files = con.execute(f"SELECT count(*) FROM glob('{glob}')").fetchone()[0]
    if not files:
        fail(f"no Parquet files match {glob}")
    check_parquet_schema(con, glob, columns)
    create_view(con, database, glob, columns)
    check_partitions(con, database)

    queries = named_queries(template, resolver, database)
    by_text = {text: name for name, text in queries.items()}
    required = [q.replace("<table>", f"{database}.ticks") for q in REQUIRED_QUERIES]
    for text in required:
        if text not in by_text:
            fail(f"no named query is exactly: {text}")
    for name, text in queries.items():
        try:
            rows = con.execute(text).fetchall()
        except duckdb.Error as error:
            fail(f"named query {name} failed: {error}\n  {text}")
        if text in required and not rows:
            fail(f"named query {name} returned no rows\n  {text}")
        print(f"check_athena: {name}: {len(rows)} rows")
    print(
        f"check_athena: Glue table {database}.ticks ({len(columns)} columns + dt) matches {files} "
        f"Parquet files; {len(queries)} named queries ran"
    )


if __name__ == "__main__":
    main()
