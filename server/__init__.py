"""The transcription web service: FastAPI app served by uvicorn (see server/app.py)."""
