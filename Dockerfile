# syntax=docker/dockerfile:1
# Build: compile TypeScript (src/ and gen/) and the web UI (ui/) with the dev dependencies.
FROM node:24-bookworm-slim AS build
WORKDIR /app
# The workspace's manifest too: npm ci links every workspace the lock file names.
COPY package.json package-lock.json ./
COPY packages/client/package.json ./packages/client/package.json
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY gen ./gen
COPY src ./src
# The web UI (ui/, Vite): built into dist/ui/, which the server serves at /.
COPY ui ./ui
COPY scripts/build.mjs ./scripts/build.mjs
RUN npm run build

# Run: production dependencies and compiled JavaScript only, as an unprivileged user.
FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    HTTP_HOST=0.0.0.0 \
    GRPC_HOST=0.0.0.0 \
    DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/client/package.json ./packages/client/package.json
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
# Server reflection answers from this descriptor set (it keeps the protos' comments).
COPY gen/descriptors.binpb ./gen/descriptors.binpb
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
# Ready = the database answers (GET /readyz on HTTP_PORT, over TLS when it is on).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "dist/src/cli/healthcheck.js"]
CMD ["node", "dist/src/main.js"]
