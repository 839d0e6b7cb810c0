#!/usr/bin/env node
// `npx nestjs-durable`: see cli.program.ts for the commands.
import { readFileSync } from 'node:fs';
import { main } from './cli.program.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

process.exitCode = await main(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  width: process.stdout.isTTY ? Math.max(process.stdout.columns ?? 80, 40) : 80,
}, pkg.version);
