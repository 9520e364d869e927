# syntax=docker/dockerfile:1
# Build stage: cgo stays enabled because the SQL parser (pg_query) needs it.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/pgmemo ./cmd/pgmemo

# Runtime stage: a small Debian with CA certificates for upstream TLS.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --uid 10001 pgmemo
COPY --from=build /out/pgmemo /usr/local/bin/pgmemo
USER pgmemo
EXPOSE 6432 9432
# Listen on all interfaces inside the container; publish the port deliberately.
ENV PGMEMO_LISTEN=0.0.0.0:6432
ENTRYPOINT ["/usr/local/bin/pgmemo"]
