# The image every Kubernetes job runs in (profiles/kubernetes): Python, PyTorch (PyPI's
# Linux wheels bundle CUDA; a GPU node needs only the NVIDIA driver and device plugin), the
# project's dependencies and Snakemake with the cluster plugins (the [cluster] extra).
#   docker build -t REGISTRY/msdnet:TAG .
#   docker push REGISTRY/msdnet:TAG
#   export MSDNET_IMAGE=REGISTRY/msdnet:TAG      # the profile's container-image
# The pods run the code of the checkout that submits them (its source archive on PYTHONPATH),
# so rebuild only when the dependencies change.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

WORKDIR /opt/msdnet
# What `pip install .` reads (.dockerignore admits nothing else into the build context).
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install '.[cluster]' && msdnet --help > /dev/null && python -m snakemake --version

# The Kubernetes plugin runs each job in /workdir (an emptyDir) with /bin/sh -c.
WORKDIR /workdir
