# syntax=docker/dockerfile:1

# The jobgate image: the jobgate binary (every role: all, api, worker) and
# jobgate-probe, the health check, on a distroless base with no shell.
#
#   docker build -t jobgate .
#   docker run -p 8080:8080 jobgate    # role all: embedded Temporal server
#
# docker-compose.yml builds it for the production stack.

FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0

# Modules in their own layer: rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/jobgate ./cmd/jobgate && \
    go build -trimpath -ldflags="-s -w" -o /out/jobgate-probe ./cmd/jobgate-probe && \
    mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/jobgate /jobgate
COPY --from=build /out/jobgate-probe /jobgate-probe
# The data volume's mount point, owned by nonroot so that a named volume
# mounted there is writable (docker-compose.yml mounts one).
COPY --from=build --chown=65532:65532 /out/data /var/lib/jobgate
# Role all keeps its SQLite file in ./jobgate-data: a directory nonroot owns.
WORKDIR /home/nonroot
USER nonroot:nonroot
# A container is reached through its published port, never its loopback:
# listen on every interface even without API keys (jobgate warns then).
ENV JOBGATE_HTTP_ADDR=:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/jobgate-probe", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/jobgate"]
