"""A run linked to a trace: the tags ``span_id`` (and ``trace_id``) of a run.

``tracker.set_span_id(id)`` links a run to a span of any tracing system; a Tracker made
while an OpenTelemetry span is current (``opentelemetry-api``, the ``xetrack[otel]``
extra) records that span's ``trace_id`` and ``span_id`` on its own, in OpenTelemetry's hex
form (32 and 16 digits). Nothing is imported to find out: a span can only be current once
the program imported ``opentelemetry.trace``, so without it a Tracker costs one dict look-up.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

#: The tags a linked run carries.
SPAN_ID = "span_id"
TRACE_ID = "trace_id"


def span_text(span_id: Any) -> str:
    """A span id as kept: a non-empty str as given, an int (OpenTelemetry's form) as 16 hex
    digits.

    >>> span_text(0x00F067AA0BA902B7), span_text("run-span-7")
    ('00f067aa0ba902b7', 'run-span-7')
    """
    if isinstance(span_id, int) and not isinstance(span_id, bool):
        if span_id <= 0:
            raise ValueError(f"A span id is a positive int or a non-empty str, got {span_id!r}")
        return format(span_id, "016x")
    if not isinstance(span_id, str):
        raise TypeError(f"A span id is a str or an int, got {type(span_id).__name__}: {span_id!r:.80}")
    if not span_id.strip():
        raise ValueError("A span id is a non-empty str, got an empty one")
    return span_id


def current_span() -> dict[str, str]:
    """``{'trace_id': ..., 'span_id': ...}`` of the OpenTelemetry span current here (hex),
    or ``{}``: no span, an invalid one, or OpenTelemetry not imported or not importable.

    >>> current_span()
    {}
    """
    if "opentelemetry.trace" not in sys.modules:
        return {}
    try:
        trace = importlib.import_module("opentelemetry.trace")
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return {}
        return {TRACE_ID: trace.format_trace_id(context.trace_id), SPAN_ID: trace.format_span_id(context.span_id)}
    except Exception:  # noqa: BLE001 - tracing never stops a run from starting
        return {}
