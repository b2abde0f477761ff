import { setTimeout } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import { EXIT } from './exit-codes.js';

/** Where long work stands: `done` of `total` (null while it is not known yet) and its state's name. */
export interface Progress {
  done: number;
  total: number | null;
  state: string;
  /** Extra words after the count, e.g. "2 failed". */
  note?: string;
}

export interface FollowOptions<T> {
  /** What is being followed: "import", "rollout" (the bar's title). */
  label: string;
  /** Its id, which the plain lines name: `import 1f3c…: 3/4 rows done`. */
  id: string;
  /** The unit of the count: "rows", "tenants". */
  unit: string;
  first: T;
  read: () => Promise<T>;
  progress: (value: T) => Progress;
  finished: (value: T) => boolean;
  /** The command that follows it again, said when the wait is interrupted. */
  resume: string;
  intervalMs?: number;
}

/**
 * Waits for long work, showing its progress on stderr (stdout keeps only the answer): a bar on a
 * terminal, a plain line per change otherwise (logs, CI). Ctrl-C stops the waiting, not the work,
 * and exits 130 saying how to follow it again.
 */
export async function follow<T>(options: FollowOptions<T>): Promise<T> {
  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar(
        { stream: process.stderr, format: `${options.label} {bar} {value}/{total} ${options.unit}{note} | {state}`, hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let last = '';
  const show = (value: T) => {
    const p = options.progress(value);
    const note = p.note ? ` | ${p.note}` : '';
    if (bar) {
      bar.setTotal(p.total ?? Math.max(p.done, 1));
      return bar.update(p.done, { state: p.state, note });
    }
    const line = `${options.label} ${options.id}: ${p.done}/${p.total ?? '?'} ${options.unit} done${p.note ? `, ${p.note}` : ''} (${p.state})`;
    if (line !== last) process.stderr.write(`${line}\n`);
    last = line;
  };
  const interrupted = () => {
    bar?.stop();
    process.stderr.write(`\nstopped waiting; the work goes on (follow it with \`${options.resume}\`)\n`);
    process.exit(EXIT.interrupted);
  };
  process.once('SIGINT', interrupted);
  const first = options.progress(options.first);
  bar?.start(first.total ?? Math.max(first.done, 1), first.done, { state: first.state, note: '' });
  try {
    let current = options.first;
    show(current);
    while (!options.finished(current)) {
      await setTimeout(options.intervalMs ?? 500);
      current = await options.read();
      show(current);
    }
    return current;
  } finally {
    bar?.stop();
    process.removeListener('SIGINT', interrupted);
  }
}
