"""The run reads of a store with keys past its columns, checked against what was logged:
shared by the seeded random tests on SQLite (test_spill.py) and PostgreSQL
(test_spill_postgres.py)."""

import math

from xetrack import Reader


def _number(v):
    return type(v) in (int, float) and not (isinstance(v, float) and math.isnan(v))


def logged(rows, key):
    """The key's values in ``rows``, in order (None and NaN are no value)."""
    return [row[key] for row in rows if row.get(key) is not None and not _nan(row[key])]


def _nan(v):
    return isinstance(v, float) and math.isnan(v)


def last_values(rows, key):
    """The key's last logged value in ``rows`` (None when it has none)."""
    found = logged(rows, key)
    return found[-1] if found else None


def check_run_reads(url, runs, keys, rnd, context):
    """``runs``: track_id -> the rows as logged, in order; ``keys``: keys whose logged
    values are all numbers (ints and floats, no bools), some spilled. For a sample of them:
    ``runs()``'s last and largest value of each run, ``history()`` of a run, ``search()`` on the key,
    ``compare()`` and ``latest()``, each read by a new Reader as a notebook cell would."""
    spilled = {k.lower() for k in Reader(url).store.spilled("default")}
    wanted = [k for k in keys if k.lower() in spilled]
    assert wanted or not keys, f"{context}: no spilled key among the numeric ones"
    sample = rnd.sample(wanted, min(8, len(wanted))) + rnd.sample(keys, min(4, len(keys)))
    table = Reader(url).runs().set_index("track_id")
    assert sorted(table.index) == sorted(runs), context
    for key in sample:
        for track_id, rows in runs.items():
            expected = last_values(rows, key)
            got = table.loc[track_id, key] if key in table.columns else None
            assert _same_number(expected, got), f"{context}: runs() {track_id} {key}: {expected!r} != {got!r}"
    table = Reader(url).runs(agg="max").set_index("track_id")
    for key in sample:
        for track_id, rows in runs.items():
            values = logged(rows, key)
            expected = max(values) if values else None
            got = table.loc[track_id, key] if key in table.columns else None
            assert _same_number(expected, got), f"{context}: runs(max) {track_id} {key}: {expected!r} != {got!r}"
    for key in sample[:4]:
        track_id = rnd.choice(sorted(runs))
        values = logged(runs[track_id], key)
        got = Reader(url).history(key, track_id=track_id)["value"].tolist()
        assert len(got) == len(values) and all(map(_same_number, values, got)), f"{context}: history {key}"
        ends = {t: last_values(rows, key) for t, rows in runs.items()}
        finite = sorted(v for v in ends.values() if v is not None and math.isfinite(v))
        if finite:
            cut = finite[len(finite) // 2]
            found = Reader(url).search(f"{key} >= {cut!r}")
            expected = sorted(t for t, v in ends.items() if v is not None and v >= cut)
            assert sorted(found["track_id"]) == expected, f"{context}: search {key} >= {cut!r}"
    pair = sorted(runs)[:2]
    compared = Reader(url).compare(pair).set_index("field")
    for key in sample:
        if key in compared.index:
            for track_id in pair:
                expected = last_values(runs[track_id], key)
                assert _same_number(expected, compared.loc[key, track_id]), f"{context}: compare {key}"


def _same_number(expected, got):
    missing = got is None or (isinstance(got, float) and math.isnan(got))
    if expected is None:
        return missing or str(got) in ("<NA>", "nan", "None")
    if missing or not _number(expected):
        return False
    return float(got) == float(expected)
