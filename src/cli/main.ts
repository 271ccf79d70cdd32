/**
 * The `attention-lens` command line. Each subcommand lives in its own module and receives the
 * arguments after its name; add one by adding it to SUBCOMMANDS.
 *
 * Exit codes: 0 success, 1 the run failed, 2 bad arguments or unusable input files (one line on
 * stderr, no stack; set ATTENTION_LENS_DEBUG=1 for stacks).
 */
import { ModelFormatError } from '../../engine/model/modelFormatError';
import { TokenizerFormatError } from '../node/tokenizer';
import { CliError } from './cliError';
import { ANALYZE_USAGE, runAnalyze } from './analyze';
import { FORWARD_USAGE, runForward } from './forward';
import { PULL_USAGE, runPull } from './pull';
import { EFFECT_USAGE, KNOCKOUT_USAGE, runEffect, runKnockout } from './causal';
import { HEADS_USAGE, MAP_USAGE, runHeads, runMap } from './studies';

interface Subcommand {
  readonly summary: string;
  readonly usage: string;
  run(args: string[], log: (line: string) => void): Promise<void>;
}

const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  forward: { summary: 'run one forward pass and print logits and attention rows as JSON', usage: FORWARD_USAGE, run: runForward },
  analyze: { summary: 'show which distant definitions and imports each identifier of a file attends to', usage: ANALYZE_USAGE, run: runAnalyze },
  knockout: { summary: 'knock spans out of one token\'s attention: how its next-token prediction changes (JSON)', usage: KNOCKOUT_USAGE, run: runKnockout },
  effect: { summary: 'hide a span from the rest of the file: how every later prediction changes (JSON)', usage: EFFECT_USAGE, run: runEffect },
  map: { summary: 'the dependency map of a file: which definitions attend to which, beside the code\'s references', usage: MAP_USAGE, run: runMap },
  heads: { summary: 'which heads follow the code\'s references to definitions and imports, over many files', usage: HEADS_USAGE, run: runHeads },
  pull: { summary: 'download a model from the Hugging Face Hub into the model cache', usage: PULL_USAGE, run: runPull },
};

function usage(): string {
  const lines = Object.entries(SUBCOMMANDS).map(([name, command]) => `  ${name.padEnd(10)} ${command.summary}`);
  return `Usage: attention-lens <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun "attention-lens <command> --help" for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) throw new CliError('give a command, e.g. "attention-lens forward --help"; run "attention-lens --help" for the list.');
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const command = SUBCOMMANDS[name];
  if (!command) throw new CliError(`unknown command "${name}"; commands: ${Object.keys(SUBCOMMANDS).join(', ')}. Run "attention-lens --help".`);
  await command.run(rest, (line) => process.stderr.write(`${line}\n`));
  return 0;
}

function exitCodeOf(error: unknown): number {
  if (error instanceof CliError) return error.exitCode;
  if (error instanceof ModelFormatError || error instanceof TokenizerFormatError) return 2;
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => exit(code),
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`attention-lens: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
    if (process.env.ATTENTION_LENS_DEBUG && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    exit(exitCodeOf(error));
  },
);

/** Exits once stdout has drained: a WebGPU device may otherwise keep the process alive. */
function exit(code: number): void {
  process.stdout.write('', () => process.exit(code));
}
