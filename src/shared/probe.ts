/**
 * A probe: a read-only shell snippet plus a pure parser of what it printed. Shared by `facts/` (which
 * writes probes) and `core/` (which batches and runs them), so that neither imports the other's types.
 */

/** What a probe printed on the host: its stdout and exit status. */
export interface ProbeOutput {
  readonly stdout: string;
  readonly code: number;
  /**
   * What parsers made of this answer, by their own key, for the other tasks reading the same answer
   * (every apt task of a host reads one package listing). Made by the host's probe cache: it lives as
   * long as the answer, in the run, not in a module.
   */
  readonly parsed?: Map<string, unknown>;
}

/** What a file probe reads: its path, how much content, the sha256 its task wants there. */
export interface PathProbe {
  readonly path: string;
  readonly content: 'none' | 'small' | 'always';
  /** `small` only: when the file's sha256 is this, its content is not needed (the task is a no-op). */
  readonly expect?: string;
}

/** A probe's script with what a batch needs to know of it (no parser): what `runProbes` takes. */
export interface ProbeScript {
  /** POSIX shell, read-only. Runs inside a batch with other tasks' probes. */
  readonly script: string;
  /**
   * Set when the script reads one path (src/facts/file.ts): a batch answers all such probes together
   * with a few processes instead of two or three each. The probe carries it: no registry of scripts.
   */
  readonly path?: PathProbe;
}

/** A read-only shell snippet plus a pure parser of its output. */
export interface Probe<Current> extends ProbeScript {
  parse(out: ProbeOutput): Current;
}
