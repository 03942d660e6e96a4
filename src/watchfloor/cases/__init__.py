"""Cases: alerts escalated into cases with notes, tasks and preserved evidence."""
