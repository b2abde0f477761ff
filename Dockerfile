# syntax=docker/dockerfile:1
# One image for both roles: `node dist/cli/main.js api` (default) or `... worker`.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# ---- build: compile TypeScript and prebundle the workflow code ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# npm 10 (bundled with Node 20) ignores package.json "allowScripts" and runs every install
# script; this stops @scarf/scarf from phoning home.
ENV SCARF_ANALYTICS=false
# Lockfile first, so the dependency layer is cached across source-only changes.
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
# Emits dist/ including dist/workflow-bundle.js (workers load it instead of bundling at startup).
RUN npm run build

# ---- runtime: production dependencies + compiled output only ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    SCARF_ANALYTICS=false
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
# Same layout as the repo: the app finds its root via package.json, then dist/ and db/migrations/.
COPY --from=build /app/dist ./dist
COPY db/migrations ./db/migrations
# Files stay root-owned, so the app cannot modify its own code.
USER node
EXPOSE 3000 9464
CMD ["node", "dist/cli/main.js", "api"]
