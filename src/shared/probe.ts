/**
 * A probe: a read-only shell snippet plus a pure parser of what it printed. Shared by `facts/` (which
 * writes probes) and `core/` (which batches and runs them), so that neither imports the other's types.
 */

/** What a probe printed on the host: its stdout and exit status. */
export interface ProbeOutput {
  readonly stdout: string;
  readonly code: number;
}

/** A read-only shell snippet plus a pure parser of its output. */
export interface Probe<Current> {
  /** POSIX shell, read-only. Runs inside a batch with other tasks' probes. */
  readonly script: string;
  parse(out: ProbeOutput): Current;
}
