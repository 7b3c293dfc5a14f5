"""The dashboard as Streamlit users start it: `streamlit run dashboards/app.py -- --out results`.

A thin entry over the package's app (`cos_ray/dashboard/app.py`, which `cos-ray dashboard` serves): the same views,
the same store argument after `--`. Run from a checkout with cos-ray installed (`pip install -e .`).
"""

import sys

from cos_ray.dashboard.app import main

main(sys.argv)
