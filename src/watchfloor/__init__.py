"""watchfloor: self-hosted 24/7 monitoring of public social media with accountability built in."""

__version__ = "0.1.0"
