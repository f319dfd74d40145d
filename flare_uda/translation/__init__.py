"""flare_uda.translation."""
