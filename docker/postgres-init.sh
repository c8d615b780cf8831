#!/usr/bin/env bash
# Run by the postgres image once, when it initialises an empty data volume
# (/docker-entrypoint-initdb.d). The image sources this file when it is not executable, so it
# sets no shell options and does not exit; psql's status is the script's.
#
# One login role per application, each owning its own databases:
#   opsledger  owns `opsledger`; `opsledger migrate` runs as it (the owner role), and the api and
#              worker connect as it and switch to opsledger_app at connect time (src/db/pool.ts).
#   temporal   owns `temporal` and `temporal_visibility`; auto-setup only loads the schema
#              (SKIP_DB_CREATE=true), so the role needs no CREATEDB.
# opsledger_app is created here and handed to opsledger WITH ADMIN OPTION: sql/005_app_role.sql
# then finds it in place and may grant it, so the owner role needs no CREATEROLE.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v opsledger_password="${OPSLEDGER_DB_PASSWORD:?OPSLEDGER_DB_PASSWORD must be set}" \
  -v temporal_password="${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD must be set}" <<'SQL'
CREATE ROLE opsledger LOGIN PASSWORD :'opsledger_password';
CREATE DATABASE opsledger OWNER opsledger;
CREATE ROLE opsledger_app NOLOGIN;
GRANT opsledger_app TO opsledger WITH ADMIN OPTION;

CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
SQL
