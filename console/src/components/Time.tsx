import { useEffect, useState } from 'react';

const viewer = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function inZone(date: Date, timeZone: string): string {
  try {
    return new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'long', timeZone }).format(date);
  } catch {
    return `${date.toISOString()} (UTC)`;
  }
}

/**
 * A point in time in the viewer's own zone; hovering (or focusing) shows it in the tenant's zone,
 * and the machine-readable value stays in `dateTime`.
 */
export function Time({ value, tenantZone = 'UTC' }: { value: string | null | undefined; tenantZone?: string }) {
  if (!value) return <span>—</span>;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return <span>{value}</span>;
  return (
    <time dateTime={date.toISOString()} title={`${inZone(date, tenantZone)} — tenant time (${tenantZone})`} tabIndex={0}>
      {viewer.format(date)}
    </time>
  );
}

function remaining(ms: number): string {
  if (ms <= 0) return 'now';
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h ${String(m).padStart(2, '0')}m` : `${m}m ${String(sec).padStart(2, '0')}s`;
}

/** A live countdown to `until` ("12m 05s"), updated every second. */
export function Countdown({ until }: { until: string | null | undefined }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  if (!until) return <span>—</span>;
  const end = new Date(until).getTime();
  return (
    <span role="timer" aria-live="off" title={new Date(until).toLocaleString()}>
      {remaining(end - now)}
    </span>
  );
}
