#!/usr/bin/env bash
# The oldest peer versions package.json claims, tested for real: the packed package installed
# from the registry-free tarball beside @nestjs/common and @nestjs/core 11.0.0 and typeorm
# 0.3.20 (fetched from the npm registry), running app.mjs against a fresh database.
#   test/packaging/oldest-peers/check.sh <tarball> <admin database url>
set -euo pipefail
tarball="$1"; admin_url="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$(mktemp -d)"; db="durable_peers_$RANDOM$RANDOM"
cleanup() { psql -q "$admin_url" -c "drop database if exists $db with (force)" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
cp "$here/app.mjs" "$dir/"
cd "$dir"
printf '{ "name": "oldest-peers", "private": true, "type": "module" }\n' > package.json
npm install --no-audit --no-fund --ignore-scripts \
  "$tarball" @nestjs/common@11.0.0 @nestjs/core@11.0.0 typeorm@0.3.20 pg@8 reflect-metadata@0.2 rxjs@7
psql -q "$admin_url" -c "create database $db"
node app.mjs "${admin_url%/*}/$db"
