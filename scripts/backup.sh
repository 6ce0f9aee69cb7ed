#!/usr/bin/env bash
# Backup of the whole database (the service's tables, the migrations table and pg-boss's job
# queue, i.e. pending pushes and webhooks too) as one consistent snapshot, while the service runs.
#
#   DATABASE_URL=postgres://… scripts/backup.sh [file]        # default: walletcards-<UTC time>.dump
#
# pg_dump reads everything in one repeatable-read transaction: purchases committed during the dump
# are either wholly in it (ledger, balance, jobs) or not at all. Custom format (-Fc): compressed,
# restorable selectively with pg_restore. Use a pg_dump of the server's major version or newer
# (with compose: docker compose exec -T postgres pg_dump -Fc -U walletcards walletcards > file.dump).
# Tested by test/db/backup-restore.test.ts. Restore with scripts/restore.sh.
set -euo pipefail
: "${DATABASE_URL:?set DATABASE_URL to the database to back up}"
PG_DUMP="${PG_DUMP:-pg_dump}"
out="${1:-walletcards-$(date -u +%Y%m%dT%H%M%SZ).dump}"
tmp="${out}.partial"
# Written to a temporary name first: a failed or interrupted dump never looks like a good backup.
"$PG_DUMP" --format=custom --compress=6 --no-owner --no-privileges --file="$tmp" --dbname="$DATABASE_URL"
mv "$tmp" "$out"
echo "backup written: $out ($(wc -c <"$out") bytes)"
