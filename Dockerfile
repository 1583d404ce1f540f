# The transcription service on CPU, with the shipped model (asr/pretrained/digits).
#   docker build -t asr .
#   docker run --rm -p 8000:8000 asr          # then open http://localhost:8000/
# Settings are ASR_* environment variables (server/settings.py), e.g. -e ASR_API_KEY=secret.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# CPU-only torch in a layer of its own (the default wheels would bring CUDA along); the same exact
# pair as the Makefile, since torchaudio's compiled library loads only against its own torch.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.11.0" "torchaudio==2.11.0"

COPY pyproject.toml README.md /src/
COPY asr /src/asr
COPY server /src/server
RUN test -f /src/asr/pretrained/digits/model.safetensors \
    && pip install /src \
    && rm -rf /src

RUN useradd --create-home --uid 10001 asr
USER asr
WORKDIR /home/asr

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=4)"]
# asr serve applies the connection limits (header size and deadline, body timeout, keep-alive).
CMD ["asr", "serve", "--host", "0.0.0.0", "--port", "8000"]
