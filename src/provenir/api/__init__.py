"""REST API (FastAPI under uvicorn) over artifacts and the audit log."""
