"""flare_uda.metrics."""
