"""flare_uda.segmentation."""
