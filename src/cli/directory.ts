// `superweight directory [--json] [model-id]`: the published super-weight coordinates.
import { Command } from "commander";
import { UserError } from "../errors.js";
import { formatTable } from "../report/table.js";
import {
  DIRECTORY,
  lookupPublished,
  type DirectoryEntry,
  type PublishedSuperWeight,
} from "../superweight/directory.js";
import { output } from "./common.js";

/** Every entry, or the one `modelId` names; a UserError naming the id and listing the known ids otherwise. */
export function selectEntries(modelId?: string): readonly DirectoryEntry[] {
  if (modelId === undefined) return DIRECTORY;
  const entry = lookupPublished(modelId);
  if (!entry) {
    const known = DIRECTORY.map((e) => e.modelId).join(", ");
    throw new UserError(`no published super weights for "${modelId}"; known model ids: ${known}`);
  }
  return [entry];
}

/** U+2212 for negatives, as in the design notes; JSON keeps plain numbers. */
const num = (x: number): string => (x < 0 ? `\u2212${-x}` : String(x));

function noteCell(w: PublishedSuperWeight): string {
  const parts: string[] = [];
  if (w.activation) {
    const who = w.activation.source === w.source ? "" : ` (${w.activation.source} run)`;
    parts.push(`down_proj input ${num(w.activation.input)}, output ${num(w.activation.output)}${who}`);
  }
  if (w.note) parts.push(w.note);
  return parts.join("; ");
}

/** The text `directory` prints: a JSON object `{ models }`, or a header line, a table and the notes. */
export function renderDirectory(entries: readonly DirectoryEntry[], json = false): string {
  if (json) return JSON.stringify({ models: entries }, null, 2) + "\n";

  const rows: string[][] = [];
  for (const e of entries) {
    e.coordinates.forEach((w, i) => {
      rows.push([i === 0 ? e.modelId : "", i === 0 ? e.source : "", w.tensor, `[${w.row}, ${w.column}]`, noteCell(w)]);
    });
  }
  const out: string[] = [];
  if (entries.length === 1) {
    const e = entries[0];
    out.push(`${e.name} (${e.modelId}), model_type ${e.modelType}, ${e.source}: ${e.reference}`);
    if (e.aliases.length > 0) out.push(`aliases: ${e.aliases.join(", ")}`);
  } else {
    out.push("Published super weights (paper: Yu et al. 2024, arXiv 2411.07191; community: reported elsewhere).");
  }
  out.push("[row, column] = [output channel, input channel] of the tensor's projection.", "");
  out.push(formatTable(["model", "source", "tensor", "[row, column]", "note"], rows));
  const notes = entries.filter((e) => e.notes);
  if (notes.length > 0) {
    out.push("", "Notes:");
    for (const e of notes) out.push(entries.length === 1 ? `  ${e.notes}` : `  ${e.modelId}: ${e.notes}`);
  }
  return out.join("\n") + "\n";
}

export function directoryCommand(): Command {
  return new Command("directory")
    .description("list published super-weight coordinates: the paper's (Table 1 and its code) and community reports")
    .argument("[model-id]", "Hugging Face model id or alias (case-insensitive; a trailing @revision is ignored)")
    .option("--json", 'print one JSON object { "models": [...] }')
    .addHelpText(
      "after",
      "\nExamples:\n  superweight directory\n  superweight directory meta-llama/Llama-2-7b-hf --json",
    )
    .action((modelId: string | undefined, opts: { json?: boolean }) => {
      output.write(renderDirectory(selectEntries(modelId), opts.json === true));
    });
}
