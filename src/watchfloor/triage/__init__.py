"""Triage: the queue of open alerts, SLA clocks and escalation (issue: the watch floor)."""
