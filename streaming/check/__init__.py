"""``eifer check``: what the live system publishes, judged against the capture and the truth."""
