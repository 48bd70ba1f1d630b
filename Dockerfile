# The gateway image (Python 3.11). Rasa runs in its own image/service (Python 3.10); see README.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY kanal kanal
COPY bots bots
COPY nlu nlu
COPY bridge bridge
RUN pip install --no-cache-dir .
ENV KANAL_DATA_DIR=/data
EXPOSE 8080
CMD ["kanal", "run"]
