# Multi-stage build of the carelog server.
#   docker build -t carelog .      (or: docker compose build carelog)

FROM rust:1-bookworm AS builder
WORKDIR /src
# sqlx compile-time checked queries (if any) must use the committed .sqlx data:
# there is no database during the image build.
ENV SQLX_OFFLINE=true
COPY . .
RUN cargo build --release --locked \
 && install -m 0755 target/release/carelog /carelog

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /carelog /usr/local/bin/carelog
ENV CARELOG_BIND=0.0.0.0:8080
EXPOSE 8080
CMD ["carelog", "serve"]
