"""The paper's figures from a results store: each figure is one module with its SQL, its verdict, its table and its
plot (Chain-of-Steps, Fig. 3b noise, Fig. 3c CKA, Fig. 5 energy, Fig. 6 swap, the ensemble table, frames x steps).

`cos-ray figures`, the dashboard's Probes / Chain-of-Steps / Compare views and the model card draw from these
functions, so one number has one implementation. The package reads the store only (no model, engine, Ray, torch or
diffusers: .importlinter); the figure modules the dashboard imports know no task family either - a family's
stricter verdict (the maze route, `maze_route.py`, `ground_truth.py`) is handed to them as a `verdicts.Verdict`.
"""
