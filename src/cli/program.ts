/**
 * The `attune` command tree: global options, then one group of commands per area. Building it has
 * no side effects; `main.ts` runs it.
 */
import { Command, Option } from 'commander';
import { registerActionCommands } from './commands/actions.ts';
import { registerCompletionCommand } from './commands/completion.ts';
import { registerExecutionCommands } from './commands/executions.ts';
import { registerInquiryCommands } from './commands/inquiries.ts';
import { registerKeyCommands } from './commands/keys.ts';
import { registerPackCommands } from './commands/packs.ts';
import { registerRuleCommands } from './commands/rules.ts';
import { registerRunCommand } from './commands/run.ts';
import { registerServerCommands } from './commands/server.ts';
import { registerSessionCommands } from './commands/session.ts';
import { registerRuntimeCommands, registerTriggerCommands } from './commands/triggers.ts';
import { registerWorkflowCommands } from './commands/workflows.ts';
import { cliVersion } from './context.ts';

export interface ProgramOptions {
  /** Where commander writes its own messages (usage errors, help). */
  writeOut?: (s: string) => void;
  writeErr?: (s: string) => void;
}

export function buildProgram(opts: ProgramOptions = {}): Command {
  const program = new Command('attune');
  program
    .description('Attune: event-driven automation and workflows, from the terminal')
    .version(cliVersion(), '-V, --version', 'print the version')
    .addOption(
      new Option('--profile <name>', 'the profile of the configuration file to use (env: ATTUNE_PROFILE)'),
    )
    .addOption(
      new Option(
        '--url <url>',
        "the Attune server (env: ATTUNE_URL; default: the profile's, else http://127.0.0.1:8080)",
      ),
    )
    .addOption(new Option('--json', 'print results as JSON'))
    .addOption(new Option('--yaml', 'print results as YAML'))
    .addOption(new Option('-q, --quiet', 'print only identifiers (ids or refs), one a line'))
    .addOption(new Option('--no-color', 'no colours (also: NO_COLOR=1)'))
    .addOption(new Option('--debug', 'show each HTTP exchange and the details of errors on stderr'))
    .showHelpAfterError('(run with --help for usage)')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: opts.writeOut ?? ((s) => process.stdout.write(s)),
      writeErr: opts.writeErr ?? ((s) => process.stderr.write(s)),
    })
    .addHelpText(
      'after',
      '\nCredentials: `attune login` saves a session in ~/.config/attune/config.yaml (XDG_CONFIG_HOME\n' +
        'honoured); ATTUNE_API_KEY overrides it. Exit codes: 0 success, 1 failure, 2 usage error.\n' +
        'Documentation: docs/cli.md',
    );

  registerServerCommands(program);
  registerSessionCommands(program);
  registerRunCommand(program);
  registerExecutionCommands(program);
  registerPackCommands(program);
  registerActionCommands(program);
  registerWorkflowCommands(program);
  registerRuleCommands(program);
  registerTriggerCommands(program);
  registerRuntimeCommands(program);
  registerKeyCommands(program);
  registerInquiryCommands(program);
  registerCompletionCommand(program);
  return program;
}
