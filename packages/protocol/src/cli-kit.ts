/**
 * What the three binaries share: an option table as data (so --help, the README and docs/cli.md
 * come from one source), strict parsing, env defaults, and the exit-code contract:
 * 0 success, 1 work failed, 2 usage or connection error, 130 interrupted.
 */
import type { Options } from 'yargs';
import { formatError } from './format-error.js';

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

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

export async function runCli<A>(spec: CliSpec<A>): Promise<void> {
  const [{ default: yargs }, { hideBin }] = await Promise.all([import('yargs'), import('yargs/helpers')]);
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
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((message, error) => {
      process.stderr.write(`${spec.program}: ${message || formatError(error, verbose)}\nRun '${spec.program} --help' for usage.\n`);
      process.exit(EXIT.usage);
    });
  for (const [command, description] of spec.examples) parser = parser.example(command, description);
  parser = parser.epilog(`Keys for CURVE: '${spec.program} keygen DIR [--name NAME]' writes DIR/NAME.key (secret, mode 0600) and DIR/NAME.pub.`);
  const argv = parser.parseSync() as unknown as A;
  try {
    process.exitCode = await spec.main(argv);
  } catch (error) {
    process.stderr.write(`${spec.program}: ${formatError(error, verbose)}\n`);
    process.exitCode = EXIT.usage;
  }
}

export const VERSION = '0.1.0';

/** `testbroker keygen DIR --name NAME` (the same in all three binaries). */
async function keygen(program: string, args: string[], verbose: boolean): Promise<void> {
  const [{ default: yargs }, { generateKeyFiles }] = await Promise.all([import('yargs'), import('./keys.js')]);
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
