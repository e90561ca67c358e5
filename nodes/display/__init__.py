"""Live biofeedback display: an aiohttp server that relays the bus to a local web page."""
