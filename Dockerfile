# walletcards: one image for the service. Real certificates are mounted at /app/certs, never baked in.
FROM node:20-bookworm-slim

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data \
    APPLE_CERT_DIR=/app/certs

WORKDIR /app
COPY package.json package-lock.json ./
# tsx runs the TypeScript sources directly (no build step); dev dependencies are not needed.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY src ./src
COPY migrations ./migrations
COPY passes ./passes
COPY scripts ./scripts
COPY tsconfig.json ./

RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+process.env.PORT+'/readyz').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"
# SIGTERM reaches node directly (exec form): the server stops accepting, finishes requests and jobs.
CMD ["node", "--import", "tsx", "src/server.ts"]
