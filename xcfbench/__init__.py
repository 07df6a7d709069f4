"""xcfbench: exact page accounting for compressed-page allocators."""

__version__ = "0.1.0"
