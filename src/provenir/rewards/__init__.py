"""Reward primitives for GRPO / RLHF."""
