#!/usr/bin/env node
// Entry point: registers tsx so that provision's sources and the user's TypeScript playbooks and roles
// load at run time, then hands over to the CLI.
import {register} from 'tsx/esm/api';

register();
const {main} = await import('../src/cli/main.ts');
await main(process.argv);
