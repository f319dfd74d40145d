"""flare_uda.inference."""
