"""What hardware can do: host facts, backend probes, measured peaks, the platform catalogue."""
