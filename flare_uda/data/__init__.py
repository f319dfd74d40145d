"""flare_uda.data."""
