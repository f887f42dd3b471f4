// A Stryker reporter that writes each surviving or uncovered mutant as soon as it is known, one line apiece, to
// reports/mutation/<group>.live.txt: a long run's survivors can be read (and tests written for them) before it ends.
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { PluginKind, declareClassPlugin } from "@stryker-mutator/api/plugin";

const path = `reports/mutation/${process.env.STRYKER_GROUP ?? "all"}.live.txt`;

class LiveSurvivors {
  onDryRunCompleted() {
    mkdirSync("reports/mutation", { recursive: true });
    writeFileSync(path, "");
  }
  onMutantTested(m) {
    if (m.status !== "Survived" && m.status !== "NoCoverage") return;
    const at = `${m.fileName.replace(`${process.cwd()}/`, "")}:${m.location.start.line}:${m.location.start.column + 1}`;
    const replacement = String(m.replacement ?? "")
      .replace(/\s+/g, " ")
      .slice(0, 80);
    appendFileSync(path, `${m.status === "Survived" ? "S " : "NC"} ${at} ${m.mutatorName} => ${replacement}\n`);
  }
}

export const strykerPlugins = [declareClassPlugin(PluginKind.Reporter, "live-survivors", LiveSurvivors)];
