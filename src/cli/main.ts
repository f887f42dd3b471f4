#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { UserError } from "../errors.js";
import { runCommand } from "./run.js";
import { scanCommand } from "./scan.js";
import { directoryCommand } from "./directory.js";
import { evalCommand } from "./eval.js";

const program = new Command("superweight")
  .description("Find and use the super weights of large language models (Yu et al., arXiv 2411.07191).")
  .version(JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")).version)
  .showHelpAfterError();
program.addCommand(runCommand());
program.addCommand(scanCommand());
program.addCommand(directoryCommand());
program.addCommand(evalCommand());

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof UserError) {
    process.stderr.write(`superweight: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
});
