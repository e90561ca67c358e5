"""The ZeroMQ bus: PUB/SUB with msgpack (pubsub), each topic's fields (schema), JPEG payloads
(jpeg)."""
