#!/usr/bin/env node
// First: tracing (when OTEL_* asks for it) must be running before the rest is used.
import './tracing.js';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Argument, Command } from 'commander';
import type { Config } from '../core/config.js';
import { packageVersion, projectRoot } from '../runtime/paths.js';
import type { RunningStack, StackParts } from '../runtime/stack.js';
import { registerAdminCommands } from './tenancy.js';
import { registerActionCommands } from './actions.js';
import { registerGrantCommands } from './grants.js';
import { registerPersonCommands } from './lifecycle.js';
import { registerAuditCommands } from './audit.js';
import { registerCampaignCommands, registerReviewCommands } from './campaigns.js';
import { registerStandingCommands } from './campaigns/standing.js';
import { registerPolicyCommands } from './policy.js';
import { registerTemplateCommands } from './templates.js';
import { registerRolloutCommands } from './rollouts.js';
import { registerDriftCommands } from './drift.js';
import { setOutputFormat } from './api-client.js';
import { bashCompletion, zshCompletion } from './completion.js';
import { EXIT } from './exit-codes.js';

// The stack, the database and the workflow bundler are loaded by the commands that use them: most
// commands only talk to the API, and loading the rest first took seconds on every run.

/** Reads .env when present, then the environment; a bad value ends the process naming the variable. */
async function config(): Promise<Config> {
  const { ConfigError, loadConfig } = await import('../core/config.js');
  try {
    if (existsSync('.env')) process.loadEnvFile('.env');
  } catch (error) {
    process.stderr.write(`tenure: cannot read .env: ${(error as Error).message}\n`);
    process.exit(2);
  }
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`tenure: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

/** Runs a stack until SIGINT/SIGTERM or a part fails, then stops everything it started. */
async function runStack(parts: StackParts, banner: (stack: RunningStack, cfg: Config) => string | undefined) {
  const cfg = await config();
  const { createLogger, resolveLogFormat } = await import('../runtime/logger.js');
  const { startStack } = await import('../runtime/stack.js');
  const logger = createLogger(
    cfg.LOG_LEVEL,
    { role: parts.api && parts.worker ? 'all-in-one' : parts.api ? 'api' : 'worker' },
    resolveLogFormat(cfg.LOG_FORMAT, cfg.NODE_ENV),
  );
  let stack: RunningStack;
  try {
    stack = await startStack(cfg, logger, parts);
  } catch (error) {
    // Each part fails with a sentence that says what to do; the stack is for LOG_LEVEL=debug.
    const reason = error instanceof Error ? error.message : String(error);
    logger.debug({ err: error }, 'could not start');
    logger.fatal({ reason }, 'could not start');
    process.stderr.write(`\ntenure: could not start: ${reason}\n`);
    process.exit(1);
  }
  const text = banner(stack, cfg);
  if (text) process.stdout.write(text);

  let stoppingSince = 0;
  const stop = async (reason: string, code: number) => {
    if (stoppingSince) return;
    stoppingSince = Date.now();
    logger.info({ reason }, 'shutting down');
    await stack.stop();
    logger.info('stopped');
    process.exit(code);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      // Ctrl-C reaches us twice (from the terminal and relayed by npm/tsx); only a later one forces.
      if (stoppingSince && Date.now() - stoppingSince > 2000) {
        process.stderr.write('tenure: forced exit\n');
        process.exit(130);
      }
      void stop(signal, 0);
    });
  }
  const error = await stack.failed;
  logger.fatal({ err: error }, 'a part of Tenure failed');
  await stop('failure', 1);
}

function startBanner(stack: RunningStack, cfg: Config, redactUrl: (url: string) => string): string {
  const lines = [
    '',
    'Tenure is running.',
    `  API          ${stack.apiUrl}`,
    `  Console      ${stack.apiUrl}/console/`,
    `  API docs     ${stack.apiUrl}/docs`,
    `  OpenAPI      ${stack.apiUrl}/openapi.json`,
    `  Metrics      ${stack.apiUrl}/metrics`,
    `  Temporal UI  ${stack.temporalUiUrl ?? `(external cluster at ${stack.temporalAddress})`}`,
    `  Temporal     ${stack.temporalAddress} (namespace ${cfg.TEMPORAL_NAMESPACE})`,
    `  PostgreSQL   ${redactUrl(stack.databaseUrl)}`,
    `  Data         ${path.resolve(cfg.TENURE_DATA_DIR)}`,
  ];
  if (stack.demo) {
    lines.push('', `Demo MSP — tenants: ${stack.demo.tenants.join(', ')}`, 'Demo API tokens (send as `Authorization: Bearer <token>`):');
    for (const actor of stack.demo.actors) lines.push(`  ${actor.key.padEnd(18)} ${actor.token}  ${actor.roles}`);
    lines.push(`  e.g. curl -H "Authorization: Bearer ${stack.demo.actors[0]?.token}" ${stack.apiUrl}/v1/tenants`);
    const contoso = stack.demo.tenantIds?.contoso;
    const operator = stack.demo.actors.find((a) => a.key === 'msp-operator')?.token;
    if (contoso && operator) {
      lines.push(
        'Try a grant (HelpdeskAdmin is auto-approved; GlobalAdmin needs contoso-approver):',
        `  TENURE_URL=${stack.apiUrl} TENURE_TOKEN=${operator} npx tenure grant request --tenant ${contoso} \\`,
        '    --subject ana.lima --role HelpdeskAdmin --minutes 5 --ticket INC-1 --justification "demo"',
      );
    }
    const hrFeed = stack.demo.actors.find((a) => a.key === 'contoso-hr-feed')?.token;
    if (contoso && hrFeed) {
      const joiner = {
        eventId: 'demo-join-1',
        personId: 'dana.ruiz',
        type: 'joiner',
        effectiveAt: '2026-01-05T08:00:00Z',
        attributes: { department: 'Finance' },
        profile: { username: 'dana.ruiz', displayName: 'Dana Ruiz' },
      };
      lines.push(
        'Try a joiner (then GET the Location it answers with):',
        `  curl -i -X POST -H "Authorization: Bearer ${hrFeed}" -H 'Content-Type: application/json' \\`,
        `    ${stack.apiUrl}/v1/tenants/${contoso}/hr-events -d '${JSON.stringify(joiner)}'`,
      );
    }
  }
  lines.push('', 'Press Ctrl-C to stop.', '');
  return lines.join('\n');
}

const program = new Command()
  .name('tenure')
  .description('Time-bound, tenant-scoped access workflows for MSP identity operations.')
  .version(packageVersion())
  // `--version` after a subcommand belongs to it (an unknown option there), never the program's version.
  .enablePositionalOptions()
  // A usage mistake (unknown option, missing argument) exits 2, whichever command it is in: subcommands inherit this.
  .exitOverride((error) => process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.usage))
  // Every command prints in the format its own --json / -o asked for.
  .hook('preAction', (_program, command) => setOutputFormat(command.opts()));

program
  .command('start')
  .description('Run everything in one process: embedded PostgreSQL and Temporal dev server (unless configured), worker and API.')
  .action(async () => {
    // The console is built from source here (not committed): on a warm start nothing changed and this is a hash check.
    const { buildConsole } = await import('../runtime/console-build.js');
    try {
      const built = await buildConsole();
      if (built.built) process.stderr.write(`tenure: built the web console in ${built.seconds.toFixed(1)} s\n`);
    } catch (error) {
      process.stderr.write(`tenure: could not build the web console (${(error as Error).message}); the API runs without it\n`);
    }
    const { redactUrl } = await import('../runtime/stack.js');
    await runStack({ api: true, worker: true, embedded: true }, (stack, cfg) => startBanner(stack, cfg, redactUrl));
  });

program
  .command('api')
  .description('Run the HTTP API against an existing PostgreSQL (DATABASE_URL) and Temporal (TEMPORAL_ADDRESS).')
  .action(() => runStack({ api: true, worker: false, embedded: false }, (stack) => `Tenure API listening on ${stack.apiUrl}\n`));

program
  .command('worker')
  .description('Run the Temporal worker against an existing PostgreSQL (DATABASE_URL) and Temporal (TEMPORAL_ADDRESS).')
  .action(() => runStack({ api: false, worker: true, embedded: false }, () => undefined));

program
  .command('migrate')
  .description('Apply pending database migrations to DATABASE_URL (safe to run twice or concurrently).')
  .action(async () => {
    const cfg = await config();
    if (!cfg.DATABASE_URL) {
      process.stderr.write('tenure: DATABASE_URL is not set. (`npm start` migrates its embedded database itself.)\n');
      process.exit(2);
    }
    const { migrate } = await import('../db/migrate.js');
    const applied = await migrate(cfg.DATABASE_URL);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
  });

program
  .command('bootstrap-admin')
  .description('Create the first MSP admin and print its API token (production set-up; refuses if an MSP admin exists).')
  .requiredOption('--name <displayName>', 'who the admin is, e.g. "Alice Example"')
  .option('--expires-in-days <days>', 'token lifetime', '30')
  .action(async (options: { name: string; expiresInDays: string }) => {
    const cfg = await config();
    if (!cfg.DATABASE_URL) {
      process.stderr.write('tenure: DATABASE_URL is not set. (`npm start` seeds a demo MSP with tokens instead.)\n');
      process.exit(2);
    }
    const [{ migrate }, { APP_ROLE, createPool }, { bootstrapAdmin }] = await Promise.all([
      import('../db/migrate.js'),
      import('../db/pool.js'),
      import('../usecases/tenancy/bootstrap.js'),
    ]);
    await migrate(cfg.DATABASE_URL);
    const pool = cfg.DATABASE_APP_URL
      ? createPool({ connectionString: cfg.DATABASE_APP_URL, max: 1 })
      : createPool({ connectionString: cfg.DATABASE_URL, max: 1, role: APP_ROLE });
    try {
      const admin = await bootstrapAdmin(pool, options.name, Number(options.expiresInDays));
      process.stdout.write(`MSP admin ${admin.actorId} created.\nAPI token (shown once): ${admin.token}\n`);
    } catch (error) {
      process.stderr.write(`tenure: ${(error as Error).message}\n`);
      process.exitCode = 1;
    } finally {
      await pool.end();
    }
  });

program
  .command('bundle-workflows')
  .description('Prebundle the workflow code for production workers.')
  .requiredOption('--out <file>', 'where to write the bundle')
  .option('--tracing', 'build in the OpenTelemetry workflow interceptors (for workers with OTEL_* set)')
  .option('--cache-dir <dir>', 'take a bundle made from the same inputs from <dir>, else keep this one there too')
  .action(async (options: { out: string; tracing?: boolean; cacheDir?: string }) => {
    const bundleOptions = { tracing: options.tracing ?? false };
    await mkdir(path.dirname(options.out), { recursive: true });
    if (options.cacheDir) {
      // npm run build keeps it where the test run looks (tests/setup/global.ts): webpack runs once for both.
      const { cachedWorkflowBundle } = await import('../worker/bundle-cache.js');
      const cached = await cachedWorkflowBundle(options.cacheDir, path.join(projectRoot(), 'package-lock.json'), bundleOptions);
      await copyFile(cached.path, options.out);
    } else {
      const { bundleWorkflows } = await import('../worker/worker.js');
      await writeFile(options.out, await bundleWorkflows(bundleOptions));
    }
    process.stdout.write(`wrote ${options.out}\n`);
  });

program
  .command('build-console')
  .description('Build the web console into dist/console (npm start does it when its sources changed).')
  .option('--types-only', 'only generate console/src/api/schema.d.ts from the OpenAPI document')
  .option('--force', 'build even when nothing changed')
  .action(async (options: { typesOnly?: boolean; force?: boolean }) => {
    const { buildConsole, generateConsoleTypes } = await import('../runtime/console-build.js');
    if (options.typesOnly) {
      await generateConsoleTypes();
      process.stdout.write('wrote console/src/api/schema.d.ts\n');
      return;
    }
    const result = await buildConsole({ force: options.force ?? false });
    process.stdout.write(result.built ? `built ${result.dir} in ${result.seconds.toFixed(1)} s\n` : `${result.dir} is up to date\n`);
  });

program
  .command('openapi')
  .description("Print the API's OpenAPI document (the same one GET /openapi.json serves).")
  .action(async () => {
    const { buildApiDocument } = await import('../api/document.js');
    process.stdout.write(`${JSON.stringify(buildApiDocument(packageVersion()), null, 2)}\n`);
  });

registerAuditCommands(program);

registerAdminCommands(program);
registerPolicyCommands(program);
registerGrantCommands(program);
registerPersonCommands(program);
registerCampaignCommands(program);
registerReviewCommands(program);
registerStandingCommands(program);
registerActionCommands(program);
registerTemplateCommands(program);
registerRolloutCommands(program);
registerDriftCommands(program);

program
  .command('completion')
  .description('Print a shell completion script, generated from these commands: source <(tenure completion bash)')
  .addArgument(new Argument('<shell>').choices(['bash', 'zsh']))
  .action((shell: 'bash' | 'zsh') => {
    process.stdout.write(shell === 'bash' ? bashCompletion(program) : zshCompletion(program));
  });

await program.parseAsync(process.argv);
