#!/usr/bin/env bash
# Run by the postgres image once, when it initialises an empty data volume
# (/docker-entrypoint-initdb.d). The image sources this file when it is not executable, so it
# sets no shell options and does not exit; psql's status is the script's.
#
# One owner role per application, owning its databases:
#   opsledger  owns `opsledger`; only `opsledger migrate` runs as it.
#   temporal   owns `temporal` and `temporal_visibility`; auto-setup only loads the schema
#              (SKIP_DB_CREATE=true), so the role needs no CREATEDB.
# opsledger_app holds the grants sql/005_app_role.sql gives the application; it is created here
# so that the owner needs no CREATEROLE. The worker and the API log in as opsledger_app_login, a
# member of opsledger_app and of nothing else: were they to log in as the owner, SET ROLE NONE
# would take any session of theirs back to it, and the owner may rewrite the ledger.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v opsledger_password="${OPSLEDGER_DB_PASSWORD:?OPSLEDGER_DB_PASSWORD must be set}" \
  -v opsledger_app_password="${OPSLEDGER_APP_DB_PASSWORD:?OPSLEDGER_APP_DB_PASSWORD must be set}" \
  -v temporal_password="${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD must be set}" <<'SQL'
CREATE ROLE opsledger LOGIN PASSWORD :'opsledger_password';
CREATE DATABASE opsledger OWNER opsledger;
CREATE ROLE opsledger_app NOLOGIN;
CREATE ROLE opsledger_app_login LOGIN PASSWORD :'opsledger_app_password' IN ROLE opsledger_app;

CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
SQL
