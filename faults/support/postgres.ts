import { migrate } from '../../db/migrate.js';
import { createPool, type Pool } from '../../db/pool.js';
import { ensureServiceLogin, withLogin } from '../../db/roles.js';
import { startEmbeddedPostgres, type RunningPostgres } from '../../runtime/embedded-postgres.js';
import type { Logger } from '../../runtime/logger.js';
import { freePort } from '../../runtime/ports.js';
import { restartService, type FaultRun, type Progress } from './run.js';
import type { Timeline } from './timeline.js';

const SERVICE_LOGIN = 'tenure_service';

/** The embedded PostgreSQL a run owns, restartable on the same port and data folder. */
export class OwnedPostgres {
  private running: RunningPostgres | undefined;
  restarts = 0;
  constructor(
    private readonly options: { dir: string; port: number; logger: Logger },
    private readonly timeline: Timeline,
    private readonly progress: Progress,
  ) {}

  async start(): Promise<RunningPostgres> {
    this.running = await startEmbeddedPostgres({ ...this.options, database: 'tenure' });
    return this.running;
  }

  /** Fast shutdown (clients are cut off mid-transaction), a pause, then the same cluster again. */
  async restart(downMs: number): Promise<void> {
    await restartService(
      { name: 'PostgreSQL', down: () => this.timeline.add('postgres_down'), up: () => this.timeline.add('postgres_up') },
      { stop: () => this.stop(), start: () => this.start(), downMs },
      this.progress,
    );
    this.restarts++;
  }

  async stop(): Promise<void> {
    const running = this.running;
    this.running = undefined;
    await running?.stop();
  }
}

export interface RunDatabase {
  postgres: OwnedPostgres;
  /** As the owner (migrations, the worker's DATABASE_URL). */
  url: string;
  /** As the service's own non-owner login, as a deployment connects. */
  appUrl: string;
  /** The driver's pool, as the API would hold it. */
  pool: Pool;
  /** For checks across tenants and the ledger, as the owner, outside row-level security. */
  owner: Pool;
}

/** Starts the run's own PostgreSQL in `dir`, migrated, with the service login and two pools; all undone by the run's cleanup. */
export async function startRunDatabase(run: FaultRun, dir: string, timeline: Timeline): Promise<RunDatabase> {
  const postgres = new OwnedPostgres({ dir, port: await freePort(), logger: run.logger }, timeline, run.progress);
  run.cleanup.push({ name: 'PostgreSQL', step: () => postgres.stop() });
  run.progress('starting embedded PostgreSQL');
  const info = await postgres.start();
  await migrate(info.url);
  await ensureServiceLogin(info.url, SERVICE_LOGIN, info.servicePassword);
  const appUrl = withLogin(info.url, SERVICE_LOGIN, info.servicePassword);
  const pool = createPool({ connectionString: appUrl, max: 10, applicationName: 'tenure-faults' });
  run.cleanup.push({ name: 'service pool', step: () => pool.end() });
  const owner = createPool({ connectionString: info.url, max: 2, applicationName: 'tenure-faults-check' });
  run.cleanup.push({ name: 'owner pool', step: () => owner.end() });
  return { postgres, url: info.url, appUrl, pool, owner };
}
