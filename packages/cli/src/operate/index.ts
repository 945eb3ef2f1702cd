import { cpCommand } from '../commands/cp.js';
import { createCommand } from '../commands/create.js';
import { execCommand } from '../commands/exec.js';
import { inspectCommand } from '../commands/inspect.js';
import { type LifecycleVerb, lifecycleCommand, lifecycleVerbs } from '../commands/lifecycle.js';
import { lsCommand } from '../commands/ls.js';
import { pruneCommand } from '../commands/prune.js';
import { shellCommand } from '../commands/shell.js';
import { errorLine, UsageError } from './common.js';

/** The operator verbs and their line in `statebox --help`. */
export const operatorUsage = `
Operating sandboxes (any backend: --provider local|docker|..., else statebox.config.* or STATEBOX_PROVIDER):
  statebox create [--label KEY=VALUE]... [-q]         a new sandbox; prints its id
  statebox ls [--label KEY=VALUE]... [--json]         list sandboxes: status, age, disk, parent, labels
  statebox inspect ID... [--json]                     everything known, the fork tree, the backend's capabilities
  statebox exec [-w DIR] [-e K=V]... ID -- CMD...     run a command (stdin piped in, output streamed, exit code kept)
  statebox shell [-w DIR] ID [-- CMD...]              an interactive shell on a terminal
  statebox cp SRC DEST                                copy files or directories; one side is ID:PATH
  statebox suspend|resume|destroy ID...               with progress and timings
  statebox fork ID... [--count N] [--label K=V]...    print each child's id
  statebox prune [--dry-run] [--json]                 remove what crashed processes left, and sandboxes of ended sessions
`;

const verbs: Record<string, (argv: string[]) => Promise<number>> = {
  create: createCommand,
  ls: lsCommand,
  inspect: inspectCommand,
  exec: execCommand,
  shell: shellCommand,
  cp: cpCommand,
  prune: pruneCommand,
  ...Object.fromEntries(
    lifecycleVerbs.map((verb) => [verb, (argv: string[]) => lifecycleCommand(verb as LifecycleVerb, argv)]),
  ),
};

export function isOperatorVerb(word: string | undefined): boolean {
  return word !== undefined && Object.hasOwn(verbs, word);
}

/** Runs a verb; every failure becomes one line on stderr and an exit code (2 for a wrong command line). */
export async function runOperatorVerb(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  try {
    return await verbs[verb!]!(rest);
  } catch (error) {
    process.stderr.write(errorLine(error));
    return error instanceof UsageError ? error.code : 1;
  }
}
