"""The denoising loop made observable and steerable: pipeline calls, hook points, per-step records, operators.

Knows nothing of Ray: everything here runs and is tested in one process.
"""
