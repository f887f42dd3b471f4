// Progress on stderr for long work: a bar when stderr is a terminal, silence otherwise (so pipes and
// --json output stay clean). SUPERWEIGHT_PROGRESS=0 turns it off, =1 forces plain lines.
import cliProgress from "cli-progress";

export interface Progress {
  tick(label?: string): void;
  stop(): void;
}

const silent: Progress = { tick() {}, stop() {} };

export function progress(title: string, total: number): Progress {
  const mode = process.env.SUPERWEIGHT_PROGRESS;
  if (mode === "0" || (!process.stderr.isTTY && mode !== "1")) return silent;
  if (!process.stderr.isTTY) {
    let done = 0;
    return { tick: (label) => process.stderr.write(`${title}: ${++done}/${total}${label ? ` ${label}` : ""}\n`), stop() {} };
  }
  const bar = new cliProgress.SingleBar(
    { format: `${title} [{bar}] {value}/{total} {label} {duration}s`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { label: "" });
  return { tick: (label) => bar.increment(1, { label: label ?? "" }), stop: () => bar.stop() };
}
