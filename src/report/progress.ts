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
    return {
      tick: (label) => process.stderr.write(`${title}: ${++done}/${total}${label ? ` ${label}` : ""}\n`),
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: `${title} [{bar}] {value}/{total} {label} {duration}s`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { label: "" });
  return { tick: (label) => bar.increment(1, { label: label ?? "" }), stop: () => bar.stop() };
}

/**
 * Progress of Hub downloads: a bar per file on a terminal (redrawn at most ten times a second), a line per file
 * otherwise; SUPERWEIGHT_PROGRESS=0 silences it.
 */
export function downloadProgress(): (file: string, done: number, total: number) => void {
  const mode = process.env.SUPERWEIGHT_PROGRESS;
  let file = "",
    bar: cliProgress.SingleBar | undefined,
    last = 0;
  return (name, done, total) => {
    if (mode === "0") return;
    if (!process.stderr.isTTY) {
      if (name !== file)
        process.stderr.write(`downloading ${name}${total ? ` (${(total / 1e6).toFixed(1)} MB)` : ""}\n`);
      file = name;
      return;
    }
    if (name !== file) {
      bar?.stop();
      file = name;
      bar = new cliProgress.SingleBar(
        { format: `${name} [{bar}] {percentage}% {value}/{total} MB`, stream: process.stderr, hideCursor: true },
        cliProgress.Presets.shades_classic,
      );
      bar.start(Math.max(1, Math.round(total / 1e6)), 0);
    }
    const now = Date.now();
    if (now - last > 100 || done >= total) {
      bar!.update(Math.round(done / 1e6));
      last = now;
    }
    if (total && done >= total) bar!.stop();
  };
}
