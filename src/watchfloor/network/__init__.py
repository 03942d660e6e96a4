"""Network analysis: coordinated-behaviour detection on pseudonymised accounts."""
