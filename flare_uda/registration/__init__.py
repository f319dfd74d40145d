"""flare_uda.registration."""
