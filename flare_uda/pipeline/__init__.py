"""flare_uda.pipeline."""
