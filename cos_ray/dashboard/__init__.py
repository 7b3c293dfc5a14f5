"""The dashboard's logic, kept apart from the Streamlit script (`dashboards/app.py`) so it can be tested alone."""
