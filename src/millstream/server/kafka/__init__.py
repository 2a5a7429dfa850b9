"""The Kafka front door. ``codec`` is its sans-IO wire codec (frames, headers, messages)."""
