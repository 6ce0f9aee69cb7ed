#!/usr/bin/env bash
# Restores a backup made by scripts/backup.sh into DATABASE_URL, all or nothing.
#
#   DATABASE_URL=postgres://…/walletcards_restored scripts/restore.sh walletcards-….dump
#
# Restore into a new, empty database (createdb walletcards_restored), check it, then point the
# service's DATABASE_URL at it: the database the service ran on stays untouched until you switch.
# Stop the workers (or every instance) before switching, so nothing writes to the old database
# meanwhile. The restore runs in one transaction: on any error nothing is left half-restored.
# Tested by test/db/backup-restore.test.ts.
set -euo pipefail
: "${DATABASE_URL:?set DATABASE_URL to the (empty) database to restore into}"
file="${1:?usage: scripts/restore.sh <backup file>}"
PG_RESTORE="${PG_RESTORE:-pg_restore}"
PSQL="${PSQL:-psql}"
existing=$("$PSQL" --no-psqlrc --quiet --tuples-only --no-align --dbname="$DATABASE_URL" \
  --command="SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'pgboss')")
if [ "$existing" != "0" ]; then
  echo "refusing: the target database already has $existing tables; restore into a new, empty database (createdb …)" >&2
  exit 2
fi
"$PG_RESTORE" --no-owner --no-privileges --single-transaction --exit-on-error --dbname="$DATABASE_URL" "$file"
# The restored data must be consistent: every card's balance is the sum of its ledger.
bad=$("$PSQL" --no-psqlrc --quiet --tuples-only --no-align --dbname="$DATABASE_URL" \
  --command="SELECT count(*) FROM card c WHERE c.balance <> (SELECT coalesce(sum(points), 0) FROM ledger_entry l WHERE l.card_id = c.id)")
if [ "$bad" != "0" ]; then
  echo "restored, but $bad card balances differ from their ledger: do not switch to this database" >&2
  exit 3
fi
echo "restored $file; balances match the ledger"
