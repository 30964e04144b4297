"""The API half of the FastAPI + Next.js example: a health endpoint and live stats."""
import os
import time

from fastapi import FastAPI

app = FastAPI(title="ringmaster example API")
started = time.monotonic()
requests = 0


@app.get("/health")
def health():
    """Readiness and liveness probe (GET: FastAPI answers HEAD with 405)."""
    return {"status": "ok"}


@app.get("/api/stats")
def stats():
    """Live data for the web page: which worker answered, uptime, a counter."""
    global requests
    requests += 1
    return {
        "service": "fastapi",
        "worker_pid": os.getpid(),
        "reloader_pid": os.getppid(),
        "uptime_ms": int((time.monotonic() - started) * 1000),
        "requests": requests,
    }
