"""Evaluation: metrics, per-network evaluations, real video against MediaPipe, the ablation."""
