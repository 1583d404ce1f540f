"""GET /: a page to upload or record audio and see the transcript and its attention."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
@router.head("/", include_in_schema=False)  # load balancers probe with HEAD
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html")
