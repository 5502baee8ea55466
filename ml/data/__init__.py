"""Data: the rendered pairs on disk, sampling and augmentation, real-face media and sets, pseudo-labels, AU datasets."""
