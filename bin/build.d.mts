/** Types of bin/build.mjs (plain JS: it runs before anything can load TypeScript). */
export declare const root: string;
/** A hash of every source file's path, size and mtime, and of the builder. */
export declare function buildKey(): string;
/** The folder of the bundle for today's sources, built first when missing. */
export declare function ensureBuild(): Promise<string>;
