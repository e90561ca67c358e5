"""XDF 1.0 files: a streaming, crash-safe writer and a chunk walker that explains damage."""
