import { readFileSync } from 'node:fs';

/** Whether a process with this pid exists on this host (EPERM means it exists but belongs to someone else). */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let bootId: string | null | undefined;

/**
 * A stamp that tells a process apart from a later one reusing its pid: on Linux the boot id plus the process's
 * start time in clock ticks (/proc/<pid>/stat field 22). Null where /proc is unavailable (pid-only checks then).
 */
export function processStartId(pid: number): string | null {
  try {
    if (bootId === undefined) bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = rest[19]; // field 22 overall; `rest` starts at field 3
    return start && /^\d+$/.test(start) ? `${bootId}:${start}` : null;
  } catch {
    return null;
  }
}

/** Whether the process that claimed a job still runs: its pid exists and, where known, has the same start stamp. */
export function isProcessAlive(pid: number, startId: string | null): boolean {
  if (!isPidAlive(pid)) return false;
  if (startId === null) return true;
  const now = processStartId(pid);
  return now === null || now === startId;
}
