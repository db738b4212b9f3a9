"""Dashboards and rules as data: their PromQL checked (parsed, answered) and a PNG report."""
