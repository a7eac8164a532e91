#!/usr/bin/env node
// The `earshot` command: runs the CLI's TypeScript through tsx, as `npm start` runs the server (nothing
// is built ahead of time).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
