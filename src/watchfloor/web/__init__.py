"""The web UI and JSON API: FastAPI, server-rendered Jinja2 pages, htmx and server-sent events."""
