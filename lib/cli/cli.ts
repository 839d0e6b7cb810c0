#!/usr/bin/env node
// `npx nestjs-durable`: see cli.program.ts for the commands.
import { readFileSync } from 'node:fs';
import { main } from './cli.program.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

// No top-level await: the package stays loadable through require(esm), this file included.
void main(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  width: process.stdout.isTTY ? Math.max(process.stdout.columns ?? 80, 40) : 80,
}, pkg.version).then((code) => {
  process.exitCode = code;
});
