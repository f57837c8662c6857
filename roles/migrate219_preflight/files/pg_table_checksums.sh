# Every user table of every database but postgres and the templates: "== <database>" then one line per table,
# "schema.table|rows|md5 of the rows' text, sorted" (row order does not matter). Read-only. Run with sh -s, in the
# PostgreSQL container (2.19) or pod (3.x); the password, if any, comes from the container's POSTGRES_PASSWORD.
set -eu
PGPASSWORD="${POSTGRES_PASSWORD:-}"
export PGPASSWORD
for db in $(psql -X -w -A -t -q -v ON_ERROR_STOP=1 -U postgres -d postgres -c "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY 1"); do
  echo "== $db"
  psql -X -w -A -t -q -v ON_ERROR_STOP=1 -U postgres -d "$db" <<'SQL'
SELECT n.nspname || '.' || c.relname || '|' || (xpath('/row/c/text()', x))[1]::text || '|'
       || coalesce((xpath('/row/m/text()', x))[1]::text, '')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace,
LATERAL query_to_xml(format('SELECT count(*) AS c, md5(string_agg(md5(t::text), '''' ORDER BY md5(t::text))) AS m FROM %I.%I t',
                            n.nspname, c.relname), false, true, '') AS x
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY 1;
SQL
done
