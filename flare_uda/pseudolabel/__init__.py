"""flare_uda.pseudolabel."""
