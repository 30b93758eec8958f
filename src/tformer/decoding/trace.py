"""Moved to ``tformer.inspect.trace`` (inspection lives in ``tformer.inspect``); this alias goes once no caller
uses it."""

from tformer.inspect.trace import (  # noqa: F401
    Candidate,
    DecodingTrace,
    ForcedPass,
    TraceStep,
    format_trace,
    teacher_force,
    trace_json,
    trace_steps,
    trace_translations,
)
