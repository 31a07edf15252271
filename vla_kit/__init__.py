"""vla_kit: from a research VLA checkpoint to a safe, monitored deployment on edge hardware."""

__version__ = "0.1.0"

__all__ = ["__version__"]
