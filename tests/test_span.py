"""Runs linked to traces: tracker.set_span_id, Reader.span_id, the OpenTelemetry span
current when a Tracker is made, searching by them and the dashboard's run page."""

import os
import subprocess
import sys
import warnings

import pytest

from xetrack import Reader, Tracker

XSS = "<img src=x onerror=alert(1)>"


def test_set_span_id_is_kept_with_the_run_and_searchable(db):
    linked = Tracker(db, params={"model": "rf"})
    linked.set_span_id("00f067aa0ba902b7")
    linked.log({"loss": 0.5})
    by_int = Tracker(db, params={"model": "nn"})
    by_int.set_span_id(0x53995C3F42CD8AD8)  # OpenTelemetry's int form: 16 hex digits
    by_int.log({"loss": 0.25})
    plain = Tracker(db, params={"model": "lr"})
    plain.log({"loss": 0.75})

    reader = Reader(db)
    assert reader.span_id(linked.track_id) == "00f067aa0ba902b7"
    assert reader.span_id(by_int.track_id) == "53995c3f42cd8ad8"
    assert reader.span_id(plain.track_id) is None
    assert reader.span_id("no-such-run") is None
    found = reader.search("tags.span_id = '00f067aa0ba902b7'")
    assert found["track_id"].tolist() == [linked.track_id] and found["model"].tolist() == ["rf"]
    assert set(reader.search("tags.span_id IS NOT NULL")["track_id"]) == {linked.track_id, by_int.track_id}
    assert reader.runs().set_index("track_id").loc[by_int.track_id, "tags.span_id"] == "53995c3f42cd8ad8"

    linked.set_span_id("another-span")  # a run linked again: the new id
    assert Reader(db).span_id(linked.track_id) == "another-span"


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (None, TypeError),
        (1.5, TypeError),
        (b"ab", TypeError),
        ("", ValueError),
        ("  ", ValueError),
        (0, ValueError),
        (-7, ValueError),
        (True, TypeError),
    ],
)
def test_a_bad_span_id_is_refused_and_nothing_is_kept(db, bad, error):
    tracker = Tracker(db)
    tracker.log({"loss": 1.0})
    with pytest.raises(error, match="span id"):
        tracker.set_span_id(bad)
    assert Reader(db).span_id(tracker.track_id) is None


@pytest.fixture(scope="module")
def tracer():
    sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="needs opentelemetry-sdk (pip install 'xetrack[dev]')")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("xetrack-tests"), exporter
    provider.shutdown()


def test_a_tracker_made_inside_a_span_records_its_ids(db, tracer):
    trace = pytest.importorskip("opentelemetry.trace", reason="needs opentelemetry-api (pip install 'xetrack[otel]')")
    otel, exporter = tracer
    exporter.clear()
    with otel.start_as_current_span("train") as span:
        run = Tracker(db, params={"lr": 0.1})
        run.log({"loss": 0.5})
        with otel.start_as_current_span("epoch") as inner:
            nested = Tracker(db, params={"lr": 0.2})
            nested.log({"loss": 0.4})
    outside = Tracker(db, params={"lr": 0.3})
    outside.log({"loss": 0.3})

    finished = {s.name: s.context for s in exporter.get_finished_spans()}
    assert set(finished) == {"train", "epoch"}
    assert finished["train"] == span.get_span_context()
    reader = Reader(db)
    tags = reader.tags(run.track_id)
    assert tags == {
        "trace_id": trace.format_trace_id(finished["train"].trace_id),
        "span_id": trace.format_span_id(finished["train"].span_id),
    }
    assert len(tags["trace_id"]) == 32 and len(tags["span_id"]) == 16
    assert reader.span_id(run.track_id) == tags["span_id"]
    # The span current when the nested run was made: the inner one, in the same trace.
    assert reader.span_id(nested.track_id) == trace.format_span_id(inner.get_span_context().span_id)
    assert reader.tags(nested.track_id)["trace_id"] == tags["trace_id"]
    assert reader.span_id(nested.track_id) != tags["span_id"]
    # No span current: nothing recorded.
    assert reader.tags(outside.track_id) == {} and reader.span_id(outside.track_id) is None
    same_trace = reader.search(f"tags.trace_id = '{tags['trace_id']}'", order_by="lr")
    assert same_trace["track_id"].tolist() == [run.track_id, nested.track_id]


def test_an_invalid_span_records_nothing(db):
    trace = pytest.importorskip("opentelemetry.trace", reason="needs opentelemetry-api (pip install 'xetrack[otel]')")
    with trace.use_span(trace.INVALID_SPAN):  # what the API returns without an SDK
        tracker = Tracker(db)
    assert Reader(db).span_id(tracker.track_id) is None and tracker.tags == {}


def test_without_opentelemetry_nothing_is_recorded_and_nothing_fails(db, monkeypatch):
    # As if OpenTelemetry could not be imported: `import opentelemetry.trace` raises.
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a warning
        tracker = Tracker(db, params={"lr": 0.1})
        tracker.log({"loss": 0.5})
    assert tracker.tags == {} and Reader(db).span_id(tracker.track_id) is None


def test_making_a_tracker_does_not_import_opentelemetry(tmp_path):
    code = (
        "import sys; from xetrack import Tracker\n"
        "t = Tracker(sys.argv[1]); t.log({'loss': 1.0}); t.set_span_id('abc')\n"
        "print('opentelemetry' in sys.modules, t.tags)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "x.db")], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False {'span_id': 'abc'}"


@pytest.fixture
def linked_db(db):
    with Tracker(db, params={"model": "rf"}) as run:
        run.log({"loss": 0.5})
        run.set_span_id(XSS)  # markup, to be shown as text
        run.set_tags({"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"})
    with Tracker(db, params={"model": "nn"}) as other:
        other.log({"loss": 0.25})
    return db, run.track_id, other.track_id


def test_the_dashboard_api_gives_the_runs_trace(linked_db):
    pytest.importorskip("starlette", reason="the ui extra: pip install 'xetrack[ui]'")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from xetrack.ui.app import create_app

    db, linked, other = linked_db
    client = TestClient(create_app(lambda table: Reader(db, table=table, persist_summary=False)))
    body = client.get("/api/run", params={"run": linked}).json()
    assert body["trace"] == {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": XSS}
    assert client.get("/api/run", params={"run": other}).json()["trace"] == {}


def test_the_run_page_shows_the_span_id_as_text(linked_db, chromium_browser):
    pytest.importorskip("starlette", reason="the ui extra: pip install 'xetrack[ui]'")
    from xetrack.ui import serve_in_thread

    db, linked, _ = linked_db
    dashboard = serve_in_thread(lambda table: Reader(db, table=table, persist_summary=False), port=0)
    base = dashboard.url.split("/runs")[0]
    try:
        page = chromium_browser.new_page()
        dialogs, errors = [], []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/run?run={linked}")
        page.wait_for_selector("#about tr")
        about = dict(
            zip(
                page.locator("#about th").all_inner_texts(),
                page.locator("#about td").all_inner_texts(),
            )
        )
        images = page.locator("main img").count()
        page.close()
    finally:
        dashboard.stop()
    assert about["span_id"] == XSS and about["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert images == 0 and dialogs == [] and errors == []
