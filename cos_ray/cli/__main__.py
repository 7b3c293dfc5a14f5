"""`python -m cos_ray.cli`: the same command as `cos-ray`."""

from cos_ray.cli import main

main()
