#!/usr/bin/env python3
"""How far SQLite's own row-by-row insert stays from its transfer copy, for
the bulk tables' current schema and a few others (issue 12, point 3).

    python3 benches/sqlite_schemas.py [path/to/bulk-invite]   # default target/release/bulk-invite

The import benchmark's SQLite floor is `INSERT INTO t SELECT * FROM src.t`
into empty tables: SQLite's transfer optimization, which copies records
undecoded and appends each index in its own order. An import inserts new
rows, so at best it runs as fast as SQLite inserting the same rows one by
one (the same copy with `WHERE 1`); the import benchmark prints both. This
script asks whether another shape of the two bulk tables would bring that
row-by-row insert within the import target's 1.6x of the transfer:

- current: the schema `bulk-invite migrate` makes;
- integer_keys: `import_entries` and `invitations` keyed by an integer
  (the import's number shifted left 32 bits, or'ed with the position) as
  their rowid, with no `import_id` and `position` columns and so no
  (import, position) index;
- no_due, no_open_address: the current schema less one of the indexes
  every new invitation enters;
- id_not_unique: the invitations' ids in a plain index instead of a
  unique one (an insert then skips the probe for a duplicate);
- integer_keys_id_not_unique: both;
- keyed_kept_columns: the integer rowid key of integer_keys, with the
  `import_id` and `position` columns kept beside it (unindexed), so
  queries that name them still run;
- import_number: `import_id` replaced by an integer number of the import,
  the (number, position) key still a unique index beside the rowid.

For each it fills a source database row by row with the rows of a
1,000,000-line file shaped like the import benchmark's (3 % invalid, 3 %
repeated, 10 % with a display name), then times the transfer and the
row-by-row copy of those rows into fresh databases opened as the server
opens them (WAL, `synchronous = NORMAL`, `wal_autocheckpoint = 0`, a 32 MB
page cache, the page size of the migrated file). The schemas run in
turn, BENCH_RUNS times (default 3), and it prints each run and the
medians; BENCH_SCHEMAS (names separated by spaces) runs only those, so a
noisy machine can give a few of them more runs, and BENCH_PAGE_SIZE gives
every database that page size instead of the migrated file's. It uses
the SQLite of the `apsw` module when it is installed (`pip install apsw`:
a recent SQLite, as the server bundles), else Python's own.
"""

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

try:
    import apsw

    SQLITE_VERSION = apsw.sqlite_lib_version()

    def connect(path):
        return apsw.Connection(path)

    def run(conn, sql):
        # A statement that returns rows (a PRAGMA) pauses apsw's execution
        # of the rest: read them all.
        return list(conn.execute(sql))

except ImportError:
    import sqlite3

    SQLITE_VERSION = sqlite3.sqlite_version

    def connect(path):
        return sqlite3.connect(path, isolation_level=None)

    def run(conn, sql):
        # executescript would commit an open transaction first: only the
        # setup, outside one, has several statements.
        if ";" in sql.strip().rstrip(";"):
            return conn.executescript(sql).fetchall()
        return conn.execute(sql).fetchall()


BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/bulk-invite")
ENTRIES = int(os.environ.get("BENCH_ENTRIES", "1000000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SETTINGS = ("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
            "PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -32768;")
ACCOUNT = "019ad000-0000-7000-8000-000000000001"
IMPORT = "019ad000-0000-7000-8000-0000000000aa"
AT = "2026-11-28 17:00:00.123456"
TABLES = ("import_entries", "invitations")


def current_schema(bin_path, scratch):
    """The bulk tables and their indexes as `bulk-invite migrate` makes them,
    and the page size it gives the file."""
    path = os.path.join(scratch, "migrated.db")
    subprocess.run([bin_path, "migrate"], env=dict(os.environ, DATABASE_URL=f"sqlite://{path}"),
                   check=True, capture_output=True)
    conn = connect(path)
    rows = run(conn, "SELECT sql FROM sqlite_master WHERE tbl_name IN ('import_entries', "
                     "'invitations') AND sql IS NOT NULL ORDER BY type DESC, name")
    ((page_size,),) = run(conn, "PRAGMA page_size")
    conn.close()
    return "\n".join(sql + ";" for (sql,) in rows), page_size


def replaced(schema, old, new):
    if old not in schema:
        sys.exit(f"the migrated schema has changed; not found: {old!r}")
    return schema.replace(old, new)


def schemas(current):
    """Each variant's DDL and how its bulk rows are keyed (see `fill`)."""
    entry_key = "    import_id TEXT NOT NULL,\n    position BIGINT NOT NULL,\n    line"
    invitation_key = "    import_id TEXT NOT NULL,\n    position BIGINT NOT NULL,\n    email"
    primary_key = ",\n    PRIMARY KEY (import_id, position)\n"

    def without_primary_key(schema):
        schema = replaced(schema, primary_key, "\n")
        if "PRIMARY KEY (import_id" in schema:
            sys.exit("the migrated schema has changed: cannot key it by integer")
        return schema

    keyed = replaced(current, entry_key, "    key INTEGER PRIMARY KEY,\n    line")
    keyed = without_primary_key(replaced(keyed, invitation_key,
                                         "    key INTEGER PRIMARY KEY,\n    email"))
    kept = replaced(current, entry_key, "    key INTEGER PRIMARY KEY,\n" + entry_key)
    kept = without_primary_key(replaced(kept, invitation_key,
                                        "    key INTEGER PRIMARY KEY,\n" + invitation_key))
    number = replaced(current, "    import_id TEXT NOT NULL,\n    position",
                      "    import_number INTEGER NOT NULL,\n    position")
    number = replaced(number, "PRIMARY KEY (import_id, position)",
                      "PRIMARY KEY (import_number, position)")
    if "import_id" in number:
        sys.exit("the migrated schema has changed: cannot number its imports")

    def id_not_unique(schema):
        schema = replaced(schema, "    id TEXT NOT NULL UNIQUE,", "    id TEXT NOT NULL,")
        return schema + "\nCREATE INDEX invitations_id ON invitations (id);"

    due = next(s for s in current.split(";") if "invitations_due" in s) + ";"
    open_address = next(s for s in current.split(";") if "invitations_open_address" in s) + ";"
    return {
        "current": (current, "text"),
        "integer_keys": (keyed, "keyed"),
        "no_due": (replaced(current, due, ""), "text"),
        "no_open_address": (replaced(current, open_address, ""), "text"),
        "id_not_unique": (id_not_unique(current), "text"),
        "integer_keys_id_not_unique": (id_not_unique(keyed), "keyed"),
        "keyed_kept_columns": (kept, "keyed_kept_columns"),
        "import_number": (number, "number"),
    }


def generate(path):
    """The rows of a file shaped like the import benchmark's, unindexed."""
    conn = connect(path)
    run(conn, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; "
              "CREATE TABLE e (position, line, raw, email, status, reason); "
              "CREATE TABLE i (id, position, email, email_key);")
    rng = random.Random(7)
    entries, invitations, unique = [], [], 0
    for position in range(ENTRIES):
        roll = rng.randrange(100)
        if roll < 3:
            entries.append((position, position + 1, f"bad{position:07}.x@localhost", None,
                            "invalid", "the domain has one label"))
            continue
        if roll < 6 and unique:
            n = rng.randrange(unique)
            address = f"user{n:06}.x@example{n % 97}.com"
            entries.append((position, position + 1, address, address, "duplicate", None))
            continue
        address = f"user{unique:06}.x@example{unique % 97}.com"
        unique += 1
        raw = address if roll >= 16 else f"Ann Lee <{address}>"
        entries.append((position, position + 1, raw, address, "queued", None))
        # UUIDv7-like: time-ordered text of the same length.
        invitations.append((f"019ad5c3-{position >> 16:04x}-7abc-8def-{position:012x}", position,
                            address, address.lower()))
    cursor = conn.cursor()
    run(conn, "BEGIN")
    cursor.executemany("INSERT INTO e VALUES (?, ?, ?, ?, ?, ?)", entries)
    cursor.executemany("INSERT INTO i VALUES (?, ?, ?, ?)", invitations)
    run(conn, "COMMIT")
    conn.close()


def fill(keys):
    """Statements filling the bulk tables from the generated rows, keyed as
    `keys` says: by the import's id (text), by an integer rowid alone
    (keyed), by both (keyed_kept_columns) or by the import's number."""
    key = "(7 << 32) | position"
    columns, values = {
        "text": ("import_id, position", f"'{IMPORT}', position"),
        "keyed": ("key", key),
        "keyed_kept_columns": ("key, import_id, position", f"{key}, '{IMPORT}', position"),
        "number": ("import_number, position", "7, position"),
    }[keys]
    return [
        f"INSERT INTO main.import_entries ({columns}, line, raw, email, status, reason) "
        f"SELECT {values}, line, raw, email, status, reason FROM g.e",
        f"INSERT INTO main.invitations ({columns}, account_id, status, next_attempt_at, "
        f"created_at, id, email, email_key) SELECT {values}, '{ACCOUNT}', 'queued', "
        f"'{AT}', '{AT}', id, email, email_key FROM g.i",
    ]


def remove(path):
    """The database file at `path` and its log, if there."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


def fresh(path, schema, page_size):
    remove(path)
    conn = connect(path)
    run(conn, f"PRAGMA page_size = {page_size}; " + SETTINGS)
    run(conn, schema)
    # SQLite ignores a page size it does not support (BENCH_PAGE_SIZE
    # must be a power of two from 512 to 65536): the runs would be printed
    # under a page size they did not have.
    (actual,), = run(conn, "PRAGMA page_size")
    if actual != page_size:
        sys.exit(f"page size {page_size} not taken (SQLite kept {actual})")
    return conn


def timed(conn, statements):
    """Seconds for one transaction of `statements`, the disk flushed first."""
    os.sync()
    started = time.perf_counter()
    run(conn, "BEGIN IMMEDIATE")
    for statement in statements:
        run(conn, statement)
    run(conn, "COMMIT")
    return time.perf_counter() - started


def measure(scratch, page_size, schema, keys):
    """(transfer seconds, row-by-row seconds, log MB of each)."""
    source = os.path.join(scratch, "source.db")
    conn = fresh(source, schema, page_size)
    run(conn, f"ATTACH DATABASE '{os.path.join(scratch, 'rows.db')}' AS g")
    timed(conn, fill(keys))
    run(conn, "PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    figures = []
    for name, condition in (("transfer", ""), ("row_by_row", " WHERE 1")):
        target = os.path.join(scratch, f"{name}.db")
        conn = fresh(target, schema, page_size)
        run(conn, f"ATTACH DATABASE '{source}' AS src")
        secs = timed(conn, [f"INSERT INTO main.{t} SELECT * FROM src.{t}{condition}" for t in TABLES])
        figures.append((secs, os.path.getsize(target + "-wal") / 1e6))
        conn.close()
        remove(target)
    return figures


def main():
    scratch = tempfile.mkdtemp(prefix="sqlite-schemas-")
    try:
        current, page_size = current_schema(BIN, scratch)
        page_size = int(os.environ.get("BENCH_PAGE_SIZE", page_size))
        variants = schemas(current)
        if os.environ.get("BENCH_SCHEMAS"):
            wanted = os.environ["BENCH_SCHEMAS"].split()
            unknown = [name for name in wanted if name not in variants]
            if unknown:
                sys.exit(f"BENCH_SCHEMAS: no schema {', '.join(unknown)} (there are "
                         f"{', '.join(variants)})")
            variants = {name: variants[name] for name in wanted}
        print(f"SQLite {SQLITE_VERSION}, {os.cpu_count()} cores, {ENTRIES:,} lines, {RUNS} runs, "
              f"{page_size}-byte pages")
        generate(os.path.join(scratch, "rows.db"))
        runs_of = {name: [] for name in variants}
        print(f"{'schema':26} {'run':>3} {'transfer':>9} {'log MB':>7} {'row_by_row':>10} "
              f"{'log MB':>7} {'ratio':>6}")
        for number in range(1, RUNS + 1):
            for name, (schema, keys) in variants.items():
                (xfer, xfer_log), (rows, rows_log) = measure(scratch, page_size, schema, keys)
                runs_of[name].append((rows / xfer, xfer, rows))
                print(f"{name:26} {number:>3} {xfer:>8.2f}s {xfer_log:>7.0f} {rows:>9.2f}s "
                      f"{rows_log:>7.0f} {rows / xfer:>5.2f}x", flush=True)
        print("\nmedians (row by row / transfer; the import target is <= 1.6x of the transfer,"
              " and an import takes at least the row-by-row time):")
        for name, runs in runs_of.items():
            print(f"{name:26} {statistics.median(r for r, _, _ in runs):.2f}x  transfer "
                  f"{statistics.median(x for _, x, _ in runs):.2f}s  row by row "
                  f"{statistics.median(y for _, _, y in runs):.2f}s")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
