# walletcards: one image for every role (ROLE=api|worker|all). Real certificates are mounted at
# /app/certs, never baked in. Build: docker build -t walletcards .
#
# Stage 1 compiles TypeScript to dist/ with the dev dependencies; stage 2 is Node 22 LTS with the
# production dependencies only (no tsx, no esbuild, no TypeScript; node-forge is installed but only
# loaded to generate development certificates, which production never does).
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs ./scripts/build.mjs
COPY src ./src
RUN npm run build

FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data \
    APPLE_CERT_DIR=/app/certs
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
COPY passes ./passes

RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 3000
# /readyz: 200 when the database and the job queue answer (503 while draining on SIGTERM).
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.PORT+'/readyz').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"]
# Exec form: SIGTERM reaches node itself, which stops accepting, finishes requests and jobs, exits.
CMD ["node", "dist/server.js"]
