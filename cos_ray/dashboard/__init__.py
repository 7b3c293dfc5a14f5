"""The dashboard: the Streamlit script (`app.py`), its views (`views/`), and the queries behind them (the other
modules, testable without Streamlit). It reads the store and nothing else."""
