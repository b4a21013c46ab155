import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

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

let hostId: string | undefined;

/**
 * Where pids are comparable: the host name plus, on Linux, the pid namespace. Two containers that share a host
 * name (e.g. `--network host`) but not a pid namespace count as different hosts, so one never judges the
 * other's workers by pid (it uses their lease instead).
 */
export function hostIdentity(): string {
  if (hostId === undefined) {
    let ns = '';
    try {
      ns = readlinkSync('/proc/self/ns/pid'); // e.g. "pid:[4026531836]"
    } catch {
      /* not Linux: the host name alone */
    }
    hostId = ns ? `${hostname()}/${ns}` : hostname();
  }
  return hostId;
}
