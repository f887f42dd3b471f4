#!/usr/bin/env node
// The superweight command line. Exit status: 0 done, 1 an unexpected failure (a bug: please report it),
// 2 a usage error or bad input (one line on stderr naming the file or option).
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { UserError } from "../errors.js";
import { runCommand } from "./run.js";
import { scanCommand } from "./scan.js";
import { directoryCommand } from "./directory.js";
import { doctorCommand } from "./doctor.js";
import { auditCommand } from "./audit.js";
import { quantizeCommand } from "./quantize.js";
import { evalCommand } from "./eval.js";
import { reportCommand } from "./report.js";

const program = new Command("superweight")
  .description("Find and use the super weights of large language models (Yu et al., arXiv 2411.07191).")
  .version(JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")).version)
  .showHelpAfterError()
  .addHelpText(
    "after",
    `
Examples:
  superweight scan --demo
  superweight scan meta-llama/Llama-2-7b-hf --download
  superweight eval ./ckpt --zero-super --text heldout.txt
  superweight report ./ckpt --out report.html
  superweight <command> --help

Every command that prints results takes --json (one JSON object on stdout). Progress goes to stderr, and only
when it is a terminal (SUPERWEIGHT_PROGRESS=0 turns it off, =1 prints it as lines anywhere).

Exit status: 0 done, 1 an unexpected failure (a bug: please report it; SUPERWEIGHT_DEBUG=1 shows where),
2 a usage error or bad input (one line on stderr naming the file or option).`,
  )
  .exitOverride();
const commands = [
  runCommand(),
  scanCommand(),
  evalCommand(),
  reportCommand(),
  quantizeCommand(),
  auditCommand(),
  directoryCommand(),
  doctorCommand(),
];
for (const command of commands) program.addCommand(command.exitOverride().showHelpAfterError());

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // Commander has printed the message (or the help): --help and --version succeed, all else is a usage error.
    process.exit(err.code === "commander.helpDisplayed" || err.code === "commander.version" ? 0 : 2);
  }
  if (err instanceof UserError) {
    process.stderr.write(`superweight: ${err.message}\n`);
    process.exit(2);
  }
  const e = err as Error;
  process.stderr.write(
    `superweight: internal error: ${e?.message ?? String(err)} (a bug: please report it; SUPERWEIGHT_DEBUG=1 shows where)\n`,
  );
  if (process.env.SUPERWEIGHT_DEBUG === "1" && e?.stack) process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
