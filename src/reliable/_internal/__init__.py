"""Internals shared by the primitives: clock, durations, telemetry, names. Not public API."""
