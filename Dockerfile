# Build and runtime image of the `tenantry` binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --release --bin tenantry

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 tenantry
COPY --from=build /src/target/release/tenantry /usr/local/bin/tenantry
COPY config /etc/tenantry
ENV TENANTRY_CONFIG_DIR=/etc/tenantry \
    TENANTRY__HTTP__ADDR=0.0.0.0:8080 \
    TENANTRY__LOG__FORMAT=json
USER tenantry
EXPOSE 8080
ENTRYPOINT ["tenantry"]
CMD ["serve"]
