"""The Streamlit triage board: one module per page (run by `triage_app.py`) and shared helpers."""
