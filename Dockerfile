# syntax=docker/dockerfile:1
# One image for the three opsledger processes of docker-compose.yml: migrate, worker and api.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# Dependencies in their own layer, so that a source change does not download them again.
# --ignore-scripts: no dependency install script is needed (package.json's allowScripts approves
# only @embedded-postgres/*, which the image never starts since DATABASE_URL is always set), and it
# keeps `prepare` from building before the sources are here.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# build = tsc + the prebuilt workflow bundle (dist/workflow-bundle.js, and beside it the record
# of the sources it holds), so the worker runs no webpack at start: the image below ships no
# workflow sources, and a worker without them runs the bundle as it is (src/temporal/workflowBundle.ts).
# Then drop the dev dependencies (typescript, jest, ...).
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
# ansible-playbook runs the playbooks (started through python3 by activities/ansibleRunner.ts);
# Debian's ansible carries the ansible.posix.jsonl callback the runner reads. openssh-client
# lets playbooks reach hosts other than the container.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ansible python3 openssh-client \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    LANG=C.UTF-8
WORKDIR /app
# package.json and sql/ also mark /app as the project root (src/paths.ts): sql/ holds the
# migrations, playbooks/ the default OPSLEDGER_PLAYBOOKS_DIR.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/sql ./sql
COPY --from=build /app/playbooks ./playbooks
USER node
EXPOSE 8080
CMD ["node", "bin/opsledger.js", "api"]
