# One image for every Python process of the service: gateway web, event consumer, agents.
# The command is chosen per service in docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

# libsndfile for soundfile; eSpeak NG itself ships inside the espeakng-loader wheel. gcc builds
# the agents' Winograd kernel at their first voice load (vits/model/winograd.py); without it
# they keep oneDNN's convolutions.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsndfile1 gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Build with --build-arg PIP_EXTRA_INDEX_URL=<a CPU wheel index> for small CPU-only agent
# images; the default takes PyPI's torch build, which also drives a GPU.
ARG PIP_EXTRA_INDEX_URL=""
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN useradd --create-home --uid 1000 tts && mkdir -p /app/var/media /app/var/static /app/var/agent-cache && chown -R tts /app/var
USER tts

EXPOSE 8000
CMD ["gunicorn", "tts_project.asgi:application", "--worker-class", "uvicorn_worker.UvicornWorker", "--bind", "0.0.0.0:8000", "--config", "tts_project/gunicorn_conf.py"]
