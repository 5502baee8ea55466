"""Evaluation: metrics, per-network evaluations, real-video evaluation against MediaPipe, the ablation table."""
