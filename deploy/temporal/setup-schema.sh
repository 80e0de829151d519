#!/bin/sh
# Creates Temporal's two PostgreSQL databases if missing and sets up or
# migrates their schemas to the ones the server image needs, from the
# schema files built into temporal-sql-tool: the steps devserver's
# setupPostgres runs for JOBGATE_EMBEDDED_STORE=postgres://… and for the
# test suite (create-database; setup-schema -v 0.0; update-schema). Every
# step is a no-op when already done, so it runs before every start of the
# temporal service (docker-compose.yml's temporal-schema job).
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${POSTGRES_PWD:?}"
port=${DB_PORT:-5432}

tool() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" --port "$port" \
    --user "$POSTGRES_USER" --password "$POSTGRES_PWD" "$@"
}

for pair in "${DBNAME:-temporal}:temporal" "${VISIBILITY_DBNAME:-temporal_visibility}:visibility"; do
  db=${pair%%:*}
  schema=${pair#*:}
  tool --database "$db" create-database
  tool --database "$db" setup-schema --version 0.0
  tool --database "$db" update-schema --schema-name "postgresql/v12/$schema"
done
echo "temporal-schema: databases and schemas are current"
