# A model seed image for modelSeed.image: the chart's initContainer copies /seed/models and
# /seed/hub-cache into the pod's model cache before earshot starts (files already there are kept).
#   models/NAME/{model.bin,config.json,tokenizer.json,vocabulary.*}   CTranslate2 models, served as NAME
#   hub-cache/models--OWNER--NAME/...                                 a Hugging Face hub cache
# Both directories must be in the build context (an empty one is fine).
# Build: docker build -f seed-image.Dockerfile -t registry.example/earshot-models:2026-11 CONTEXT
# Install: --set modelSeed.enabled=true --set modelSeed.image.repository=registry.example/earshot-models
#          --set modelSeed.image.tag=2026-11
FROM busybox:1.37
COPY models /seed/models
COPY hub-cache /seed/hub-cache
