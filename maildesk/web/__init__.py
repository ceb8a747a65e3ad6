"""The HTTP side of `maildesk serve`: health, metrics and (later) the
customers' pages, served by aiohttp on the daemon's own event loop.

`server` holds the application and its start/stop; `metrics` the
Prometheus registry the daemon updates. Importing this package imports
neither aiohttp nor prometheus_client.
"""
