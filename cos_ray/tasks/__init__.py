"""Reasoning tasks: reading task folders (and, later, generators and scorers). Knows nothing of Ray or models."""
