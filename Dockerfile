# earshot: the gateway (Node 20) and the engine workers (Python 3.13, faster-whisper) with the bundled
# models, on Debian trixie's own packages. Build and run:
#   docker build -t earshot . && docker run -p 8000:8000 earshot
# Works offline: the bundled models (base, tiny.en) are inside. See README, "Deployment".

# ---- build: npm and pip install into /app, with the build tools; none of it ships but /app ----
FROM debian:trixie-slim AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# What `npm ci` needs (its postinstall builds .venv with the pinned requirements, assembles the
# bundled models and writes the engine facts), first, so that a source change does not redo the install.
COPY package.json package-lock.json .npmrc ./
COPY scripts/setup-python.ts scripts/prune-venv.py scripts/
COPY src/paths.ts src/
COPY worker/requirements.txt worker/requirements-dev.txt worker/bundled-models.json worker/
COPY worker/earshot_worker/__init__.py worker/earshot_worker/bundled.py worker/earshot_worker/facts.py worker/earshot_worker/speaker_model.py worker/earshot_worker/
# --omit=dev: no TypeScript, eslint or OpenAI SDK in node_modules, and setup-python leaves out the
# Python test tools (pytest, openai, mypy).
# onnxruntime-node (the realtime VAD) ships binaries for every platform: keep this one's (−240 MB).
RUN npm ci --omit=dev --no-audit --no-fund --foreground-scripts \
 && npm cache clean --force \
 && find node_modules/onnxruntime-node/bin -mindepth 3 -maxdepth 3 ! -path "*/linux/$(node -p process.arch)" -exec rm -rf {} + \
 && .venv/bin/python scripts/prune-venv.py
COPY src src
COPY worker/earshot_worker worker/earshot_worker
RUN .venv/bin/python -m compileall -q worker/earshot_worker

# ---- run: Node, Python and tini from Debian, /app from the build stage, a non-root user ----
# (ca-certificates: models downloaded from the Hugging Face hub come over TLS.)
FROM debian:trixie-slim
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs python3 tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home --shell /usr/sbin/nologin earshot \
 && mkdir -p /models /hub-cache \
 && chown earshot:earshot /models /hub-cache
WORKDIR /app
COPY --from=build /app /app
# The same EARSHOT_* variables as outside an image (README, "Configuration"); these are the image's defaults.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    EARSHOT_MODELS_DIR=/models \
    EARSHOT_HUB_CACHE_DIR=/hub-cache
# Your own CTranslate2 models (/models/NAME/model.bin) and the hub download cache.
VOLUME ["/models", "/hub-cache"]
USER earshot
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# tini forwards SIGTERM to node, which drains requests in flight (EARSHOT_SHUTDOWN_GRACE_MS) and stops
# its workers, and reaps any orphan.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--import", "tsx", "src/main.ts"]
