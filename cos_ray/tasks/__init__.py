"""Reasoning tasks: reading VBVR-Bench and plain sample folders, generating seeded tasks with ground truth, scoring
videos and per-step x̂0 (VBVR's five dimensions and a task-specific score per family), and laying out videos for
VBVR-EvalKit. Knows nothing of Ray or models."""
