/**
 * What the three binaries share: an option table as data (so --help, the README and docs/cli.md
 * come from one source), strict parsing, env defaults, and the exit-code contract:
 * 0 success, 1 work failed, 2 usage or connection error, 130 interrupted.
 */
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Options } from 'yargs';
import type yargsType from 'yargs';
import { formatError } from './format-error.js';

// The option tables need the default endpoints; importing them from here rather than from the
// package's index keeps zeromq (~40 ms to load) out of `--help` and `--version`.
export { DEFAULT_CLIENT_ENDPOINT, DEFAULT_WORKER_ENDPOINT } from './defaults.js';

export type OptionTable = Record<string, Options & { describe: string }>;

export interface CliSpec<A> {
  program: string;
  usage: string;
  summary: string;
  options: OptionTable;
  /** Variables named PREFIX_OPTION_NAME set any option (TESTCLIENT_BROKER=…). */
  envPrefix: string;
  examples: Array<[string, string]>;
  main(argv: A): Promise<number>;
}

/** The parts of yargs runCli uses. */
export interface Yargs {
  yargs: typeof yargsType;
  hideBin: (argv: string[]) => string[];
}

/**
 * yargs through require: its ESM build wraps --help text with a naive splitter that breaks
 * words in the middle ("r / ound-robin"); the CommonJS build wraps at word boundaries.
 */
function loadYargs(): Yargs {
  const require = createRequire(import.meta.url);
  return { yargs: require('yargs') as typeof yargsType, hideBin: (require('yargs/helpers') as { hideBin: (argv: string[]) => string[] }).hideBin };
}

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** Parses the command line after `spec` and runs its main(); `loadParser` gives yargs (a bundle brings its own). */
export async function runCli<A>(spec: CliSpec<A>, loadParser: () => Yargs = loadYargs): Promise<void> {
  // `--version` alone needs no parser: answering it without loading yargs halves its start-up.
  if (process.argv.length === 3 && process.argv[2] === '--version') {
    process.stdout.write(`${process.env.npm_package_version ?? VERSION}\n`);
    return;
  }
  // `--help` alone, likewise, when the build saved what yargs prints for it here.
  if (process.argv.length === 3 && (process.argv[2] === '--help' || process.argv[2] === '-h')) {
    const help = savedHelp(spec);
    if (help !== undefined) {
      process.stdout.write(help);
      return;
    }
  }
  const { yargs, hideBin } = loadParser();
  const args = hideBin(process.argv);
  const verbose = args.includes('--verbose') || args.includes('-v');
  if (args[0] === 'keygen') return keygen(spec.program, args.slice(1), verbose);
  let parser = yargs(args)
    .scriptName(spec.program)
    .usage(`${spec.usage}\n\n${spec.summary}`)
    .options(spec.options)
    .env(spec.envPrefix)
    // A flag given twice takes the last value, as in most CLIs, instead of becoming an array.
    .parserConfiguration({ 'duplicate-arguments-array': false })
    .strict()
    .help()
    .alias('help', 'h')
    .version(process.env.npm_package_version ?? VERSION)
    .wrap(helpWidth())
    .fail((message, error) => {
      process.stderr.write(`${spec.program}: ${message || formatError(error, verbose)}\nRun '${spec.program} --help' for usage.\n`);
      process.exit(EXIT.usage);
    });
  for (const [command, description] of spec.examples) parser = parser.example(command, description);
  parser = parser.epilog(`Keys for CURVE: '${spec.program} keygen DIR [--name NAME]' writes DIR/NAME.key (secret, mode 0600) and DIR/NAME.pub.`);
  const argv = parser.parseSync() as unknown as A;
  // A repeated flag takes its last value, except an array option, which gathers every one.
  for (const [name, option] of Object.entries(spec.options)) {
    const values = option.array ? repeatedValues(args, name, option.alias as string | undefined) : undefined;
    if (values !== undefined) (argv as Record<string, unknown>)[name] = (argv as Record<string, unknown>)[camelCase(name)] = values;
  }
  try {
    process.exitCode = await spec.main(argv);
  } catch (error) {
    process.stderr.write(`${spec.program}: ${formatError(error, verbose)}\n`);
    process.exitCode = EXIT.usage;
  }
}

export const VERSION = '0.1.0';

function helpWidth(): number {
  return Math.min(110, process.stdout.columns || 100);
}

/**
 * Besides how runCli sets yargs up, what `--help` prints depends on the option table, the width
 * and yargs' language. The first two, as one line, head the text the build saves.
 */
export function helpKey(spec: Pick<CliSpec<unknown>, 'program' | 'usage' | 'summary' | 'options' | 'envPrefix' | 'examples'>, width: number): string {
  const { program, usage, summary, options, envPrefix, examples } = spec;
  return JSON.stringify({ program, usage, summary, options, envPrefix, examples, width });
}

/**
 * `--help` as yargs printed it when `npm run build` ran (scripts/save-help.mjs), if it is what
 * yargs would print now: loading yargs and wrapping the text takes ~40 ms, longer than the rest
 * of Node's start-up. It must come from this option table (its key), this width, and a build of
 * this file (how yargs is set up): a later compile of it makes the saved text suspect. yargs
 * translates its words ("Options:", "[default: …]") after the locale variables; the text is
 * saved in English, so any other language goes through yargs.
 */
function savedHelp(spec: CliSpec<unknown>): string | undefined {
  const env = process.env;
  const locale = (env.LC_ALL || env.LC_MESSAGES || env.LANG || env.LANGUAGE || 'en_US').replace(/[.:].*/, '');
  if (!/^(C|POSIX|en|en_.*)$/.test(locale)) return undefined;
  const file = new URL(`./help/${spec.program}.txt`, import.meta.url);
  let saved: string;
  try {
    if (statSync(file).mtimeMs <= statSync(new URL(import.meta.url)).mtimeMs) return undefined;
    saved = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const newline = saved.indexOf('\n');
  return saved.slice(0, newline) === helpKey(spec, helpWidth()) ? saved.slice(newline + 1) : undefined;
}

/** Every value given to `--name` (or `-alias`) in `args`, as `--name V`, `--name V W` or `--name=V`; undefined when absent. */
function repeatedValues(args: readonly string[], name: string, alias: string | undefined): string[] | undefined {
  const flags = new Set([`--${name}`, ...(alias !== undefined ? [`-${alias}`] : [])]);
  let values: string[] | undefined;
  for (let i = 0; i < args.length && args[i] !== '--'; i++) {
    const arg = args[i]!;
    const equals = arg.indexOf('=');
    if (equals > 0 && flags.has(arg.slice(0, equals))) {
      (values ??= []).push(arg.slice(equals + 1));
    } else if (flags.has(arg)) {
      values ??= [];
      while (i + 1 < args.length && !args[i + 1]!.startsWith('-')) values.push(args[++i]!);
    }
  }
  return values;
}

function camelCase(name: string): string {
  return name.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** `testbroker keygen DIR --name NAME` (the same in all three binaries). */
async function keygen(program: string, args: string[], verbose: boolean): Promise<void> {
  const { yargs } = loadYargs();
  const { generateKeyFiles } = await import('./keys.js');
  const fail = (message: string) => {
    process.stderr.write(`${program}: ${message}\nRun '${program} keygen --help' for usage.\n`);
    process.exit(EXIT.usage);
  };
  const argv = yargs(args)
    .scriptName(`${program} keygen`)
    .usage('$0 DIR [--name NAME]\n\nWrites a CURVE key pair: DIR/NAME.key (both keys, mode 0600; keep it secret) and DIR/NAME.pub (the public key, to hand out and append to allow-lists).')
    .option('name', { type: 'string', default: program.replace(/^test/, ''), describe: 'file name (and allow-list comment) of the key' })
    .demandCommand(1, 1, 'keygen needs the directory to write to', 'keygen takes one directory')
    .strict()
    .help()
    .fail((message, error) => fail(message || formatError(error, verbose)))
    .parseSync();
  try {
    const made = await generateKeyFiles(String(argv._[0]), argv.name);
    process.stdout.write(`wrote ${made.secretFile} (secret) and ${made.publicFile}\npublic key: ${made.publicKey}\n`);
  } catch (error) {
    process.stderr.write(`${program}: ${formatError(error, verbose)}\n`);
    process.exitCode = EXIT.usage;
  }
}

/** The option table as a Markdown table, for docs/cli.md. */
export function renderOptions(spec: Pick<CliSpec<unknown>, 'program' | 'usage' | 'summary' | 'options' | 'envPrefix'>): string {
  const rows = Object.entries(spec.options).map(([name, option]) => {
    const alias = option.alias ? ` (-${String(option.alias)})` : '';
    const def = option.default === undefined ? '' : `\`${JSON.stringify(option.default)}\``;
    const env = `\`${spec.envPrefix}_${name.toUpperCase().replace(/-/g, '_')}\``;
    return `| \`--${name}\`${alias} | ${option.type ?? ''} | ${def} | ${env} | ${option.describe.replace(/\|/g, '\\|')} |`;
  });
  return [
    `## ${spec.program}`,
    '',
    `\`${spec.usage.replace('$0', spec.program)}\``,
    '',
    spec.summary,
    '',
    '| option | type | default | environment | meaning |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}
