"""Face parser F: BiSeNet segmentation plus the facial representation T (paper 2.3)."""
