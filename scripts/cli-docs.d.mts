/** Types for scripts/cli-docs.mjs, so TypeScript tests can import it. */
export interface CliDocSpec {
  program: 'testbroker' | 'testworker' | 'testclient';
  usage: string;
  summary: string;
  envPrefix: string;
  options: Record<string, { alias?: string; type?: string; default?: unknown; describe: string }>;
  examples: Array<[string, string]>;
}

/** Absolute path of docs/cli.md. */
export declare const CLI_DOC: string;
/** The option tables of testbroker, testworker and testclient, in that order. */
export declare const SPECS: readonly CliDocSpec[];
/** The whole of docs/cli.md as the generator writes it. */
export declare function renderCliDocs(): string;
